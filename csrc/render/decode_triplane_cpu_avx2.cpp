// decode_triplane CPU kernels, avx2 build (cpu/simd.h).
#define NGK_CPU_AVX2
#include "decode_triplane_cpu_kernels.h"
