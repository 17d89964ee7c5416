// composite CPU kernels, baseline build (cpu/simd.h).
#include "composite_cpu_kernels.h"
