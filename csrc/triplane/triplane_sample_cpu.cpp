// CPU kernels of triplane_sample (parallel with at::parallel_for).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "triplane_sample.h"

namespace nerfgan_kernels {
namespace triplane {
namespace {

// One task per point: three stencils, then a channel loop over each valid tap.
template <typename scalar_t>
void forward_kernel(const scalar_t* planes, const scalar_t* coords, scalar_t* out, Sizes s,
                    scalar_t scale, Reduce reduce) {
  const int64_t C = s.C, M = s.M, plane_size = s.plane_size();
  at::parallel_for(0, s.N * M, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / M, m = i % M;
      const scalar_t* p = coords + ((s.Nc == 1 ? 0 : n) * M + m) * 3;
      const scalar_t* planes_n = planes + (s.Np == 1 ? 0 : n) * 3 * plane_size;
      scalar_t* out_reduced = out + i * C;
      if (reduce != Reduce::kNone) std::fill(out_reduced, out_reduced + C, scalar_t(0));
      for (int k = 0; k < 3; ++k) {
        scalar_t u, v;
        plane_uv(k, p[0], p[1], p[2], scale, u, v);
        const Stencil<scalar_t> st = make_stencil(u, v, s.H, s.W);
        scalar_t* o = out_reduced;
        if (reduce == Reduce::kNone) {
          o = out + ((n * 3 + k) * M + m) * C;
          std::fill(o, o + C, scalar_t(0));
        }
        const scalar_t* base = planes_n + k * plane_size;
        for (int t = 0; t < 4; ++t) {
          if (!st.valid[t]) continue;
          const scalar_t w = st.weight[t];
          const scalar_t* src = base + st.offset[t] * C;
          for (int64_t c = 0; c < C; ++c) o[c] += w * src[c];
        }
      }
      if (reduce == Reduce::kMean) {
        for (int64_t c = 0; c < C; ++c) out_reduced[c] /= scalar_t(3);
      }
    }
  });
}

// Tasks are (plane slice, chunk of that slice's points). Each task owns its slice of the planes'
// gradient (chunk 0 writes the output, chunk j > 0 a private buffer summed afterwards), so the
// scatter needs no atomics; per-plane coordinate gradients go to grad_coords_pp (N, 3, M, 3),
// where every entry has exactly one writer.
template <typename scalar_t>
void backward_kernel(const scalar_t* grad, const scalar_t* planes, const scalar_t* coords,
                     scalar_t* grad_planes, scalar_t* grad_planes_extra, scalar_t* grad_coords_pp,
                     Sizes s, scalar_t scale, Reduce reduce, int64_t chunks) {
  const int64_t C = s.C, M = s.M, plane_size = s.plane_size();
  const int64_t slices = s.Np * 3;
  const int64_t points_per_slice = (s.Np == 1 ? s.N : 1) * M;
  const scalar_t gscale = reduce == Reduce::kMean ? scalar_t(1) / scalar_t(3) : scalar_t(1);
  at::parallel_for(0, slices * chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> zeros(C, scalar_t(0));  // stands in for taps outside the plane
    std::vector<scalar_t> g(C);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t slice = task / chunks, chunk = task % chunks;
      const int64_t np = slice / 3;
      const int k = static_cast<int>(slice % 3);
      const scalar_t* base = planes + slice * plane_size;
      scalar_t* gp = nullptr;
      if (grad_planes != nullptr) {
        gp = (chunk == 0 ? grad_planes : grad_planes_extra + (chunk - 1) * slices * plane_size) +
             slice * plane_size;
      }
      const int64_t j0 = points_per_slice * chunk / chunks;
      const int64_t j1 = points_per_slice * (chunk + 1) / chunks;
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t n = (s.Np == 1) ? j / M : np;
        const int64_t m = j % M;
        const scalar_t* p = coords + ((s.Nc == 1 ? 0 : n) * M + m) * 3;
        scalar_t u, v;
        plane_uv(k, p[0], p[1], p[2], scale, u, v);
        const Stencil<scalar_t> st = make_stencil(u, v, s.H, s.W);
        if (!(st.valid[0] || st.valid[1] || st.valid[2] || st.valid[3])) {
          if (grad_coords_pp != nullptr) {
            std::fill_n(grad_coords_pp + ((n * 3 + k) * M + m) * 3, 3, scalar_t(0));
          }
          continue;
        }
        const scalar_t* go = grad + (reduce == Reduce::kNone ? ((n * 3 + k) * M + m) * C
                                                             : (n * M + m) * C);
        for (int64_t c = 0; c < C; ++c) g[c] = go[c] * gscale;
        if (gp != nullptr) {
          for (int t = 0; t < 4; ++t) {
            if (!st.valid[t]) continue;
            const scalar_t w = st.weight[t];
            scalar_t* dst = gp + st.offset[t] * C;
            for (int64_t c = 0; c < C; ++c) dst[c] += w * g[c];
          }
        }
        if (grad_coords_pp != nullptr) {
          const scalar_t* tap[4];
          for (int t = 0; t < 4; ++t) tap[t] = st.valid[t] ? base + st.offset[t] * C : zeros.data();
          scalar_t gix = 0, giy = 0;
          for (int64_t c = 0; c < C; ++c) {
            gix += g[c] * (st.wy0 * (tap[1][c] - tap[0][c]) + st.wy1 * (tap[3][c] - tap[2][c]));
            giy += g[c] * (st.wx0 * (tap[2][c] - tap[0][c]) + st.wx1 * (tap[3][c] - tap[1][c]));
          }
          scalar_t gx = 0, gy = 0, gz = 0;
          plane_uv_backward(k, gix * st.half_w, giy * st.half_h, scale, gx, gy, gz);
          scalar_t* dst = grad_coords_pp + ((n * 3 + k) * M + m) * 3;
          dst[0] = gx;
          dst[1] = gy;
          dst[2] = gz;
        }
      }
    }
  });
}

}  // namespace

at::Tensor forward_cpu(const at::Tensor& planes_cl, const at::Tensor& coords, double scale,
                       Reduce reduce) {
  const Sizes s = sizes_of(planes_cl, coords);
  at::Tensor out = reduce == Reduce::kNone ? at::empty({s.N, 3, s.M, s.C}, planes_cl.options())
                                           : at::empty({s.N, s.M, s.C}, planes_cl.options());
  AT_DISPATCH_FLOATING_TYPES(planes_cl.scalar_type(), "triplane_sample_forward_cpu", [&] {
    forward_kernel<scalar_t>(planes_cl.data_ptr<scalar_t>(), coords.data_ptr<scalar_t>(),
                             out.data_ptr<scalar_t>(), s, static_cast<scalar_t>(scale), reduce);
  });
  return out;
}

std::vector<at::Tensor> backward_cpu(const at::Tensor& grad_out, const at::Tensor& planes_cl,
                                     const at::Tensor& coords, double scale, Reduce reduce,
                                     bool need_planes, bool need_coords) {
  const Sizes s = sizes_of(planes_cl, coords);
  const int64_t slices = s.Np * 3;
  const int64_t points_per_slice = (s.Np == 1 ? s.N : 1) * s.M;
  const int64_t threads = at::get_num_threads();
  // Split a slice's points over several tasks only when there are fewer slices than threads;
  // with the planes' gradient each extra chunk costs one private copy of the planes.
  int64_t chunks = (slices >= threads) ? 1 : (threads + slices - 1) / slices;
  if (!need_planes) chunks *= 2;
  chunks = std::max<int64_t>(1, std::min<int64_t>(chunks, points_per_slice / 1024));

  at::Tensor grad_planes, grad_planes_extra, grad_coords_pp;
  if (need_planes) {
    grad_planes = at::zeros(planes_cl.sizes(), planes_cl.options());
    if (chunks > 1) {
      grad_planes_extra = at::zeros({chunks - 1, s.Np, 3, s.H, s.W, s.C}, planes_cl.options());
    }
  }
  if (need_coords) grad_coords_pp = at::empty({s.N, 3, s.M, 3}, coords.options());
  if (need_planes || need_coords) {
    AT_DISPATCH_FLOATING_TYPES(planes_cl.scalar_type(), "triplane_sample_backward_cpu", [&] {
      backward_kernel<scalar_t>(
          grad_out.data_ptr<scalar_t>(), planes_cl.data_ptr<scalar_t>(),
          coords.data_ptr<scalar_t>(), need_planes ? grad_planes.data_ptr<scalar_t>() : nullptr,
          grad_planes_extra.defined() ? grad_planes_extra.data_ptr<scalar_t>() : nullptr,
          need_coords ? grad_coords_pp.data_ptr<scalar_t>() : nullptr, s,
          static_cast<scalar_t>(scale), reduce, chunks);
    });
  }
  if (grad_planes_extra.defined()) grad_planes.add_(grad_planes_extra.sum(0));
  at::Tensor grad_coords;
  if (need_coords) {
    grad_coords = grad_coords_pp.sum(1);  // (N, M, 3)
    if (s.Nc == 1 && s.N > 1) grad_coords = grad_coords.sum(0, /*keepdim=*/true);
  }
  return {grad_planes, grad_coords};
}

}  // namespace triplane
}  // namespace nerfgan_kernels
