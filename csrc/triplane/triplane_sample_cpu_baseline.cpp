// triplane_sample CPU kernels, baseline build (cpu/simd.h).
#include "triplane_sample_cpu_kernels.h"
