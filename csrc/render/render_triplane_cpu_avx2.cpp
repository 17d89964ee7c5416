// render_triplane CPU kernels, avx2 build (cpu/simd.h).
#define NGK_CPU_AVX2
#include "render_triplane_cpu_kernels.h"
