// render_triplane CPU kernels, avx512 build (cpu/simd.h).
#define NGK_CPU_AVX512
#include "render_triplane_cpu_kernels.h"
