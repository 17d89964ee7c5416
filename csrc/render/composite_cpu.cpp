// CPU kernels of composite: one task per ray (at::parallel_for); the math is composite_math.h.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "composite.h"
#include "composite_math.h"

namespace nerfgan_kernels {
namespace composite {

void forward_cpu(const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
                 const at::Tensor& depth_range, Options opt, at::Tensor& rgb, at::Tensor& depth,
                 at::Tensor& weights, at::Tensor& stats) {
  const int64_t rays = colors.size(0) * colors.size(1), S = colors.size(2), C = colors.size(3);
  AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "composite_forward_cpu", [&] {
    const scalar_t* c = colors.data_ptr<scalar_t>();
    const scalar_t* sigma = densities.data_ptr<scalar_t>();
    const scalar_t* t = depths.data_ptr<scalar_t>();
    const scalar_t lo = depth_range.data_ptr<scalar_t>()[0];
    const scalar_t hi = depth_range.data_ptr<scalar_t>()[1];
    scalar_t* rgb_p = rgb.data_ptr<scalar_t>();
    scalar_t* depth_p = depth.data_ptr<scalar_t>();
    scalar_t* weights_p = weights.data_ptr<scalar_t>();
    scalar_t* stats_p = stats.data_ptr<scalar_t>();
    at::parallel_for(0, rays, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* out = rgb_p + r * C;
        march_forward<scalar_t, scalar_t>(
            c + r * S * C, sigma + r * S, t + r * S, S, C, lo, hi, opt.white_back,
            static_cast<scalar_t>(opt.t_min), static_cast<scalar_t>(opt.alpha_min), out, out,
            depth_p + r, weights_p + r * (S - 1), stats_p + r * 3);
      }
    });
  });
}

void backward_cpu(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                  const at::Tensor& grad_weights, const at::Tensor& colors,
                  const at::Tensor& densities, const at::Tensor& depths,
                  const at::Tensor& depth_range, const at::Tensor& stats, Options opt,
                  at::Tensor& grad_colors, at::Tensor& grad_densities) {
  const int64_t rays = colors.size(0) * colors.size(1), S = colors.size(2), C = colors.size(3);
  AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "composite_backward_cpu", [&] {
    const scalar_t* g_rgb = grad_rgb.data_ptr<scalar_t>();
    const scalar_t* g_depth = grad_depth.data_ptr<scalar_t>();
    const scalar_t* g_weights = grad_weights.data_ptr<scalar_t>();
    const scalar_t* c = colors.data_ptr<scalar_t>();
    const scalar_t* sigma = densities.data_ptr<scalar_t>();
    const scalar_t* t = depths.data_ptr<scalar_t>();
    const scalar_t lo = depth_range.data_ptr<scalar_t>()[0];
    const scalar_t hi = depth_range.data_ptr<scalar_t>()[1];
    const scalar_t* stats_p = stats.data_ptr<scalar_t>();
    scalar_t* gc = grad_colors.data_ptr<scalar_t>();
    scalar_t* gs = grad_densities.data_ptr<scalar_t>();
    at::parallel_for(0, rays, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        march_backward<scalar_t, scalar_t>(
            g_rgb + r * C, g_depth + r, g_weights + r * (S - 1), c + r * S * C, sigma + r * S,
            t + r * S, S, C, lo, hi, opt.white_back, static_cast<scalar_t>(opt.t_min),
            static_cast<scalar_t>(opt.alpha_min), stats_p + r * 3, gc + r * S * C, gs + r * S);
      }
    });
  });
}

}  // namespace composite
}  // namespace nerfgan_kernels
