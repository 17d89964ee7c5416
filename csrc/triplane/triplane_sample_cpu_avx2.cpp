// triplane_sample CPU kernels, avx2 build (cpu/simd.h).
#define NGK_CPU_AVX2
#include "triplane_sample_cpu_kernels.h"
