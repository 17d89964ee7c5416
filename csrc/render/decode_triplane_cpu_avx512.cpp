// decode_triplane CPU kernels, avx512 build (cpu/simd.h).
#define NGK_CPU_AVX512
#include "decode_triplane_cpu_kernels.h"
