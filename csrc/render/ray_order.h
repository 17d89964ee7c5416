// The order in which the CPU kernels of render_triplane visit a batch's rays: along the Morton
// (Z-order) curve of each ray's middle sample. Rays visited one after another (and the share of
// one thread) then read nearby texels, so the planes' rows they gather stay in the core's cache:
// at EG3D size (128^2 rays in image order) the forward is about 30% faster than in image order.
// Only the visiting order changes; each ray is computed as before.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace nerfgan_kernels {
namespace fused {

// Bits 0..9 of v spread to bits 0, 3, 6, ..., 27.
inline uint32_t spread_bits3(uint32_t v) {
  v &= 0x3ffu;
  v = (v | (v << 16)) & 0x030000ffu;
  v = (v | (v << 8)) & 0x0300f00fu;
  v = (v | (v << 4)) & 0x030c30c3u;
  v = (v | (v << 2)) & 0x09249249u;
  return v;
}

// The R rays of origins (R, 3), directions (R, 3) and depths (R, S) (one batch's), as indices
// in Morton order of o + t d at the middle sample, quantised to 1024 levels per axis over the
// midpoints' bounding box. Rays with a non-finite midpoint go last; ties keep their order.
template <typename T>
std::vector<int64_t> morton_ray_order(const T* origins, const T* directions, const T* depths,
                                      int64_t R, int64_t S) {
  std::vector<int64_t> order(R);
  std::iota(order.begin(), order.end(), int64_t(0));
  if (R < 2 || S < 1) return order;
  std::vector<T> mid(R * 3);
  T lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  for (int64_t r = 0; r < R; ++r) {
    const T t = depths[r * S + S / 2];
    for (int a = 0; a < 3; ++a) {
      const T x = origins[r * 3 + a] + t * directions[r * 3 + a];
      mid[r * 3 + a] = x;
      if (std::isfinite(x)) {
        lo[a] = std::min(lo[a], x);
        hi[a] = std::max(hi[a], x);
      }
    }
  }
  std::vector<uint32_t> key(R);
  for (int64_t r = 0; r < R; ++r) {
    uint32_t k = 0;
    bool finite = true;
    for (int a = 0; a < 3; ++a) {
      const T x = mid[r * 3 + a];
      finite = finite && std::isfinite(x);
      const T span = hi[a] - lo[a];
      const T unit = finite && span > T(0) ? (x - lo[a]) / span : T(0);
      k |= spread_bits3(static_cast<uint32_t>(unit * T(1023))) << a;
    }
    key[r] = finite ? k : UINT32_MAX;
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return key[a] < key[b]; });
  return order;
}

}  // namespace fused
}  // namespace nerfgan_kernels
