// composite: EG3D's mip ray marcher with density masking.
//
//   colors (N, R, S, C), densities (N, R, S, 1) raw, depths (N, R, S, 1) sorted per ray,
//   depth_range (2,) = [lo, hi] clamp range of the depth output (same device, float).
//   -> rgb (N, R, C) in EG3D's output convention (2 * rgb - 1), depth (N, R, 1),
//      weights (N, R, S-1, 1), stats (N, R, 3) = [weight total, weighted depth sum, kept count].
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace nerfgan_kernels {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_forward(
    const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
    const at::Tensor& depth_range, bool white_back, double t_min, double alpha_min);

// grad_rgb (N, R, C), grad_depth (N, R, 1), grad_weights (N, R, S-1, 1) (undefined = zero).
// Returns (grad_colors (N, R, S, C), grad_densities (N, R, S, 1)). No gradient to depths.
std::tuple<at::Tensor, at::Tensor> composite_backward(
    const at::Tensor& grad_rgb, const at::Tensor& grad_depth, const at::Tensor& grad_weights,
    const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
    const at::Tensor& depth_range, const at::Tensor& stats, bool white_back, double t_min,
    double alpha_min);

namespace composite {

// Flags and thresholds of one call.
struct Options {
  bool white_back;
  double t_min;
  double alpha_min;
};

// Device kernels; every tensor contiguous, shapes as above, outputs preallocated.
void forward_cpu(const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
                 const at::Tensor& depth_range, Options opt, at::Tensor& rgb, at::Tensor& depth,
                 at::Tensor& weights, at::Tensor& stats);
void backward_cpu(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                  const at::Tensor& grad_weights, const at::Tensor& colors,
                  const at::Tensor& densities, const at::Tensor& depths,
                  const at::Tensor& depth_range, const at::Tensor& stats, Options opt,
                  at::Tensor& grad_colors, at::Tensor& grad_densities);
#ifdef NERFGAN_KERNELS_WITH_CUDA
void forward_cuda(const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
                  const at::Tensor& depth_range, Options opt, at::Tensor& rgb, at::Tensor& depth,
                  at::Tensor& weights, at::Tensor& stats);
void backward_cuda(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                   const at::Tensor& grad_weights, const at::Tensor& colors,
                   const at::Tensor& densities, const at::Tensor& depths,
                   const at::Tensor& depth_range, const at::Tensor& stats, Options opt,
                   at::Tensor& grad_colors, at::Tensor& grad_densities);
#endif

}  // namespace composite
}  // namespace nerfgan_kernels
