// Argument checks and device dispatch for triplane_sample.
#include "triplane_sample.h"

#include <cmath>

#include "../common/checks.h"
#include "../common/outputs.h"

namespace nerfgan_kernels {
namespace triplane {

Reduce parse_reduce(const std::string& reduce) {
  if (reduce == "none") return Reduce::kNone;
  if (reduce == "mean") return Reduce::kMean;
  if (reduce == "sum") return Reduce::kSum;
  TORCH_CHECK(false, "reduce must be one of \"none\", \"mean\", \"sum\", got \"", reduce, "\"");
}

namespace {

void check_inputs(const at::Tensor& planes, const at::Tensor& coords, double box_warp) {
  check_dim(planes, "planes", 5, "(Np, 3, C, H, W)");
  check_size(planes, "planes", 1, 3, "(Np, 3, C, H, W)");
  TORCH_CHECK(planes.size(3) > 0 && planes.size(4) > 0,
              "planes must have shape (Np, 3, C, H, W) with H, W >= 1, got ", planes.sizes());
  check_dim(coords, "coords", 3, "(Nc, M, 3)");
  check_size(coords, "coords", 2, 3, "(Nc, M, 3)");
  check_same_device(planes, "planes", coords, "coords");
  check_float_dtype(planes, "planes");
  check_geometry_dtype(coords, "coords", planes, "planes");
  broadcast_batch(planes.size(0), "planes", coords.size(0), "coords");
  TORCH_CHECK(std::isfinite(box_warp) && box_warp > 0, "box_warp must be a positive number, got ",
              box_warp);
}

// (Np, 3, C, H, W) -> contiguous (Np, 3, H, W, C); free when planes already are channels-last.
at::Tensor to_channels_last(const at::Tensor& planes) {
  return planes.permute({0, 1, 3, 4, 2}).contiguous();
}

}  // namespace
}  // namespace triplane

at::Tensor triplane_sample_forward(const at::Tensor& planes, const at::Tensor& coords,
                                   double box_warp, const std::string& reduce) {
  using namespace triplane;
  const Reduce r = parse_reduce(reduce);
  check_inputs(planes, coords, box_warp);
  const at::Tensor planes_cl = to_channels_last(planes);
  const at::Tensor coords_c = coords.contiguous();
  const double scale = 2.0 / box_warp;
  if (runs_cuda_kernels(planes)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
    return forward_cuda(planes_cl, coords_c, scale, r);
#else
    TORCH_CHECK(false, "planes is a CUDA tensor but nerfgan_kernels was built without CUDA");
#endif
  }
  TORCH_CHECK(planes.is_cpu(), "planes must be a CPU or CUDA tensor, got ", planes.device());
  return forward_cpu(planes_cl, coords_c, scale, r);
}

std::tuple<at::Tensor, at::Tensor> triplane_sample_backward(const at::Tensor& grad_out,
                                                            const at::Tensor& planes,
                                                            const at::Tensor& coords,
                                                            double box_warp,
                                                            const std::string& reduce,
                                                            bool need_planes, bool need_coords) {
  using namespace triplane;
  const Reduce r = parse_reduce(reduce);
  check_inputs(planes, coords, box_warp);
  const int64_t N = planes.size(0) == 1 ? coords.size(0) : planes.size(0);
  const int64_t M = coords.size(1), C = planes.size(2);
  if (r == Reduce::kNone) {
    TORCH_CHECK(grad_out.dim() == 4 && grad_out.size(0) == N && grad_out.size(1) == 3 &&
                    grad_out.size(2) == M && grad_out.size(3) == C,
                "grad_out must have shape (N, 3, M, C) = (", N, ", 3, ", M, ", ", C, "), got ",
                grad_out.sizes());
  } else {
    TORCH_CHECK(grad_out.dim() == 3 && grad_out.size(0) == N && grad_out.size(1) == M &&
                    grad_out.size(2) == C,
                "grad_out must have shape (N, M, C) = (", N, ", ", M, ", ", C, "), got ",
                grad_out.sizes());
  }
  check_same_device(grad_out, "grad_out", planes, "planes");
  check_same_dtype(grad_out, "grad_out", planes, "planes");
  const at::Tensor planes_cl = to_channels_last(planes);
  const at::Tensor coords_c = coords.contiguous();
  const at::Tensor grad_c = grad_out.contiguous();
  const double scale = 2.0 / box_warp;
  std::vector<at::Tensor> grads;
  if (runs_cuda_kernels(planes)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
    grads = backward_cuda(grad_c, planes_cl, coords_c, scale, r, need_planes, need_coords);
#else
    TORCH_CHECK(false, "planes is a CUDA tensor but nerfgan_kernels was built without CUDA");
#endif
  } else {
    grads = backward_cpu(grad_c, planes_cl, coords_c, scale, r, need_planes, need_coords);
  }
  if (grads[0].defined()) grads[0] = grads[0].permute({0, 1, 4, 2, 3});  // back to (Np,3,C,H,W)
  return {or_empty(grads[0], planes.options()), or_empty(grads[1], coords.options())};
}

}  // namespace nerfgan_kernels
