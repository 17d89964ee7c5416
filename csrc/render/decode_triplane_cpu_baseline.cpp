// decode_triplane CPU kernels, baseline build (cpu/simd.h).
#include "decode_triplane_cpu_kernels.h"
