// triplane_sample CPU kernels, avx512 build (cpu/simd.h).
#define NGK_CPU_AVX512
#include "triplane_sample_cpu_kernels.h"
