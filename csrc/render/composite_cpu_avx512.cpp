// composite CPU kernels, avx512 build (cpu/simd.h).
#define NGK_CPU_AVX512
#include "composite_cpu_kernels.h"
