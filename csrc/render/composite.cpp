// Argument checks and device dispatch for composite.
#include "composite.h"

#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>

#include <cmath>

#include "../common/checks.h"
#include "../cpu/memory.h"

namespace nerfgan_kernels {
namespace composite {
namespace {

void check_inputs(const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
                  const at::Tensor& depth_range, double t_min, double alpha_min) {
  check_dim(colors, "colors", 4, "(N, R, S, C)");
  const int64_t N = colors.size(0), R = colors.size(1), S = colors.size(2);
  TORCH_CHECK(S >= 1, "colors must have shape (N, R, S, C) with S >= 1 samples per ray, got ",
              colors.sizes());
  TORCH_CHECK(densities.dim() == 4 && densities.size(0) == N && densities.size(1) == R &&
                  densities.size(2) == S && densities.size(3) == 1,
              "densities must have shape (N, R, S, 1) = (", N, ", ", R, ", ", S, ", 1), got ",
              densities.sizes());
  TORCH_CHECK(depths.dim() == 4 && depths.size(0) == N && depths.size(1) == R &&
                  depths.size(2) == S && depths.size(3) == 1,
              "depths must have shape (N, R, S, 1) = (", N, ", ", R, ", ", S, ", 1), got ",
              depths.sizes());
  TORCH_CHECK(depth_range.dim() == 1 && depth_range.size(0) == 2,
              "depth_range must have shape (2,) = [lo, hi], got ", depth_range.sizes());
  check_float_dtype(colors, "colors");
  check_same_device(colors, "colors", densities, "densities");
  check_same_device(colors, "colors", depths, "depths");
  check_same_device(colors, "colors", depth_range, "depth_range");
  check_same_dtype(colors, "colors", densities, "densities");
  check_geometry_dtype(depths, "depths", colors, "colors");
  check_geometry_dtype(depth_range, "depth_range", colors, "colors");
  TORCH_CHECK(std::isfinite(t_min) && t_min >= 0 && t_min < 1, "t_min must be in [0, 1), got ",
              t_min);
  TORCH_CHECK(std::isfinite(alpha_min) && alpha_min >= 0 && alpha_min < 1,
              "alpha_min must be in [0, 1), got ", alpha_min);
}

// grad_rgb has the colours' dtype; grad_depth and grad_weights the geometry's (as the outputs).
void check_grad(const at::Tensor& grad, const char* name, at::IntArrayRef expected,
                const at::Tensor& colors, bool geometry) {
  if (!grad.defined()) return;
  TORCH_CHECK(grad.sizes() == expected, name, " must have shape ", expected, ", got ",
              grad.sizes());
  check_same_device(grad, name, colors, "colors");
  if (geometry) {
    check_geometry_dtype(grad, name, colors, "colors");
  } else {
    check_same_dtype(grad, name, colors, "colors");
  }
}

}  // namespace
}  // namespace composite

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_forward(
    const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
    const at::Tensor& depth_range, bool white_back, double t_min, double alpha_min) {
  using namespace composite;
  check_inputs(colors, densities, depths, depth_range, t_min, alpha_min);
  const int64_t N = colors.size(0), R = colors.size(1), S = colors.size(2), C = colors.size(3);
  const auto opts = colors.options();
  // rgb in the colours' dtype; depth, weights and the per-ray stats in the geometry's.
  const auto geometry = opts.dtype(geometry_dtype(colors.scalar_type()));
  at::Tensor rgb = at::empty({N, R, C}, opts);
  at::Tensor depth = at::empty({N, R, 1}, geometry);
  at::Tensor weights = at::empty({N, R, S - 1, 1}, geometry);
  at::Tensor stats = at::empty({N, R, 3}, geometry);
  const Options opt{white_back, t_min, alpha_min};
  const at::Tensor c = colors.contiguous(), s = densities.contiguous(), t = depths.contiguous();
  const at::Tensor range = depth_range.contiguous();
  if (runs_cuda_kernels(colors)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
    forward_cuda(c, s, t, range, opt, rgb, depth, weights, stats);
#else
    TORCH_CHECK(false, "colors is a CUDA tensor but nerfgan_kernels was built without CUDA");
#endif
  } else {
    TORCH_CHECK(colors.is_cpu(), "colors must be a CPU or CUDA tensor, got ", colors.device());
    forward_cpu(c, s, t, range, opt, rgb, depth, weights, stats);
  }
  return {rgb, depth, weights, stats};
}

std::tuple<at::Tensor, at::Tensor> composite_backward(
    const at::Tensor& grad_rgb, const at::Tensor& grad_depth, const at::Tensor& grad_weights,
    const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
    const at::Tensor& depth_range, const at::Tensor& stats, bool white_back, double t_min,
    double alpha_min) {
  using namespace composite;
  check_inputs(colors, densities, depths, depth_range, t_min, alpha_min);
  const int64_t N = colors.size(0), R = colors.size(1), S = colors.size(2), C = colors.size(3);
  check_grad(grad_rgb, "grad_rgb", {N, R, C}, colors, false);
  check_grad(grad_depth, "grad_depth", {N, R, 1}, colors, true);
  check_grad(grad_weights, "grad_weights", {N, R, S - 1, 1}, colors, true);
  TORCH_CHECK(stats.dim() == 3 && stats.size(0) == N && stats.size(1) == R && stats.size(2) == 3,
              "stats must have shape (N, R, 3) as returned by composite_forward, got ",
              stats.sizes());
  TORCH_CHECK(stats.scalar_type() == geometry_dtype(colors.scalar_type()),
              "stats must be the geometry dtype as returned by composite, got ",
              stats.scalar_type());
  // Missing upstream gradients are zeros (cheap next to the march itself).
  const auto geometry = colors.options().dtype(geometry_dtype(colors.scalar_type()));
  const at::Tensor g_rgb =
      grad_rgb.defined() ? grad_rgb.contiguous() : at::zeros({N, R, C}, colors.options());
  const at::Tensor g_depth =
      grad_depth.defined() ? grad_depth.contiguous() : at::zeros({N, R, 1}, geometry);
  const at::Tensor g_weights =
      grad_weights.defined() ? grad_weights.contiguous() : at::zeros({N, R, S - 1, 1}, geometry);
  // The CUDA kernels accumulate into zeros; the CPU kernels write every entry.
  const bool cuda = runs_cuda_kernels(colors);
  at::Tensor grad_colors = cuda ? at::zeros({N, R, S, C}, colors.options())
                                : cpu::empty_output({N, R, S, C}, colors.options());
  at::Tensor grad_densities = cuda ? at::zeros({N, R, S, 1}, colors.options())
                                   : at::empty({N, R, S, 1}, colors.options());
  const Options opt{white_back, t_min, alpha_min};
  const at::Tensor c = colors.contiguous(), s = densities.contiguous(), t = depths.contiguous();
  const at::Tensor range = depth_range.contiguous(), st = stats.contiguous();
  if (runs_cuda_kernels(colors)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
    backward_cuda(g_rgb, g_depth, g_weights, c, s, t, range, st, opt, grad_colors, grad_densities);
#else
    TORCH_CHECK(false, "colors is a CUDA tensor but nerfgan_kernels was built without CUDA");
#endif
  } else {
    backward_cpu(g_rgb, g_depth, g_weights, c, s, t, range, st, opt, grad_colors, grad_densities);
  }
  return {grad_colors, grad_densities};
}

}  // namespace nerfgan_kernels
