// composite CPU kernels, avx2 build (cpu/simd.h).
#define NGK_CPU_AVX2
#include "composite_cpu_kernels.h"
