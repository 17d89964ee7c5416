// Per-point math of tri-plane sampling, shared by the CPU and CUDA kernels.
//
// Semantics (EG3D's sample_from_planes, see docs/eg3d.md section 5):
//   point p = (x, y, z) is scaled by 2 / box_warp and projected onto three planes:
//     plane 0: (u, v) = (x, y);  plane 1: (u, v) = (x, z);  plane 2: (u, v) = (z, x)  [EG3D quirk]
//   u indexes the width axis and v the height axis; bilinear interpolation with
//   align_corners=False (texel = ((u + 1) * W - 1) / 2) and zero padding.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/macros.h"

namespace nerfgan_kernels {
namespace triplane {

enum class Reduce : int { kNone = 0, kMean = 1, kSum = 2 };

// Problem sizes: Np plane sets, Nc coordinate sets, N = broadcast batch, M points, C channels,
// H x W texels per plane.
struct Sizes {
  int64_t Np, Nc, N, M, C, H, W;
  NGK_HOST_DEVICE int64_t plane_size() const { return H * W * C; }
};

// Plane coordinates (u, v) of a point on plane k, already scaled by 2 / box_warp.
template <typename T>
NGK_HOST_DEVICE void plane_uv(int k, T x, T y, T z, T scale, T& u, T& v) {
  if (k == 0) {
    u = x * scale;
    v = y * scale;
  } else if (k == 1) {
    u = x * scale;
    v = z * scale;
  } else {
    u = z * scale;
    v = x * scale;
  }
}

// Adds the gradient with respect to (u, v) of plane k to the gradient of the point.
template <typename T>
NGK_HOST_DEVICE void plane_uv_backward(int k, T gu, T gv, T scale, T& gx, T& gy, T& gz) {
  if (k == 0) {
    gx += gu * scale;
    gy += gv * scale;
  } else if (k == 1) {
    gx += gu * scale;
    gz += gv * scale;
  } else {
    gz += gu * scale;
    gx += gv * scale;
  }
}

// The four bilinear taps of one (u, v) on an H x W plane, in torch.grid_sample's order:
// 0 = (y0, x0), 1 = (y0, x1), 2 = (y1, x0), 3 = (y1, x1).
// Taps outside the plane have valid = false, weight 0 and offset 0 (never dereferenced).
template <typename T>
struct Stencil {
  int64_t offset[4];  // y * W + x of each tap
  int64_t y0;         // row of taps 0 and 1 (taps 2 and 3 are on row y0 + 1); 0 if none is valid
  bool valid[4];
  T weight[4];
  T wx0, wx1, wy0, wy1;  // 1-D weights: wx0 = x1 - ix, wx1 = ix - x0 (same for y)
  T half_w, half_h;      // d(texel)/d(u) = W / 2, d(texel)/d(v) = H / 2
};

template <typename T>
NGK_HOST_DEVICE Stencil<T> make_stencil(T u, T v, int64_t H, int64_t W) {
  Stencil<T> s;
  s.half_w = static_cast<T>(W) / T(2);
  s.half_h = static_cast<T>(H) / T(2);
  const T ix = ((u + T(1)) * static_cast<T>(W) - T(1)) / T(2);
  const T iy = ((v + T(1)) * static_cast<T>(H) - T(1)) / T(2);
  // No tap can touch the plane (also catches NaN and infinities): every tap reads zero. The
  // float comparison comes before any integer conversion, so far-away points never overflow.
  if (!(ix > T(-1) && ix < static_cast<T>(W) && iy > T(-1) && iy < static_cast<T>(H))) {
    for (int t = 0; t < 4; ++t) {
      s.offset[t] = 0;
      s.valid[t] = false;
      s.weight[t] = T(0);
    }
    s.wx0 = s.wx1 = s.wy0 = s.wy1 = T(0);
    s.y0 = 0;
    return s;
  }
  using std::floor;  // float overload on the host
  const T fx0 = floor(ix);
  const T fy0 = floor(iy);
  const int64_t x0 = static_cast<int64_t>(fx0);
  const int64_t y0 = static_cast<int64_t>(fy0);
  const int64_t x1 = x0 + 1;
  const int64_t y1 = y0 + 1;
  s.y0 = y0;
  s.wx0 = (fx0 + T(1)) - ix;
  s.wx1 = ix - fx0;
  s.wy0 = (fy0 + T(1)) - iy;
  s.wy1 = iy - fy0;
  const bool vx0 = x0 >= 0, vx1 = x1 < W, vy0 = y0 >= 0, vy1 = y1 < H;
  s.valid[0] = vy0 && vx0;
  s.valid[1] = vy0 && vx1;
  s.valid[2] = vy1 && vx0;
  s.valid[3] = vy1 && vx1;
  s.offset[0] = s.valid[0] ? y0 * W + x0 : 0;
  s.offset[1] = s.valid[1] ? y0 * W + x1 : 0;
  s.offset[2] = s.valid[2] ? y1 * W + x0 : 0;
  s.offset[3] = s.valid[3] ? y1 * W + x1 : 0;
  s.weight[0] = s.valid[0] ? s.wx0 * s.wy0 : T(0);
  s.weight[1] = s.valid[1] ? s.wx1 * s.wy0 : T(0);
  s.weight[2] = s.valid[2] ? s.wx0 * s.wy1 : T(0);
  s.weight[3] = s.valid[3] ? s.wx1 * s.wy1 : T(0);
  return s;
}

// Gradient of one channel's interpolated value with respect to (u, v), given the tap values
// (taps outside the plane must be passed as 0) and the upstream gradient g.
template <typename T>
NGK_HOST_DEVICE void stencil_backward_uv(const Stencil<T>& s, const T tap[4], T g, T& gu, T& gv) {
  const T gix = (s.wy0 * (tap[1] - tap[0]) + s.wy1 * (tap[3] - tap[2])) * g;
  const T giy = (s.wx0 * (tap[2] - tap[0]) + s.wx1 * (tap[3] - tap[1])) * g;
  gu += gix * s.half_w;
  gv += giy * s.half_h;
}

}  // namespace triplane
}  // namespace nerfgan_kernels
