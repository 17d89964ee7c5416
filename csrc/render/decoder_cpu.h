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
      if (taps.st[k].valid[tap]) cpu::prefetch_row(base + taps.st[k].offset[tap] * C, C, 128);
    }
  }
}

// The transpose of gather_channels: grad_planes (3, H, W, C) channels-last += at every valid tap
// of the point its bilinear weight / 3 times df (C), plane by plane, tap by tap.
template <typename T>
inline __attribute__((always_inline)) void scatter_channels(const PlaneTaps<T>& taps, const T* df,
                                                            int64_t H, int64_t W, int64_t C,
                                                            T* grad_planes) {
  for (int k = 0; k < 3; ++k) {
    const triplane::Stencil<T>& st = taps.st[k];
    T* base = grad_planes + k * H * W * C;
    for (int tap = 0; tap < 4; ++tap) {
      if (!st.valid[tap]) continue;
      const T wt = st.weight[tap] / T(3);
      T* row = base + st.offset[tap] * C;
      NGK_SIMD
      for (int64_t c = 0; c < C; ++c) row[c] += wt * df[c];
    }
  }
}

}  // namespace fused
}  // namespace nerfgan_kernels
