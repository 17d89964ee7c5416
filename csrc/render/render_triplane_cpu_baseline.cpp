// render_triplane CPU kernels, baseline build (cpu/simd.h).
#include "render_triplane_cpu_kernels.h"
