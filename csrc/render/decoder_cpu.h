// CPU-only helpers of the fused decoder kernels (render_triplane_cpu_kernels.h,
// decode_triplane_cpu_kernels.h). Always inlined, so that each kernel compiles them with its
// own instruction set (cpu/simd.h).
#pragma once

#include <cstdint>

#include "../cpu/simd.h"
#include "render_triplane_math.h"

namespace nerfgan_kernels {
namespace fused {

// Starts loading the bilinear taps `taps` of a point on the plane set planes (3, H, W, C)
// channels-last: the gather is a wait on memory otherwise, so a kernel prefetches its next points
// while the current ones' MLP runs.
template <typename T>
inline __attribute__((always_inline)) void prefetch_taps(const T* planes, const PlaneTaps<T>& taps,
                                                         int64_t H, int64_t W, int64_t C) {
  for (int k = 0; k < 3; ++k) {
    const T* base = planes + k * H * W * C;
    for (int tap = 0; tap < 4; ++tap) {
      if (!taps.st[k].valid[tap]) continue;
      const char* row = reinterpret_cast<const char*>(base + taps.st[k].offset[tap] * C);
      for (int64_t b = 0; b < C * static_cast<int64_t>(sizeof(T)); b += 128) {
        __builtin_prefetch(row + b);
      }
      __asm__ __volatile__("" : : "r"(row));
    }
  }
}

}  // namespace fused
}  // namespace nerfgan_kernels
