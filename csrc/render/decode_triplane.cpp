// Argument checks, layouts and device dispatch of decode_triplane.
#include "decode_triplane.h"

#include <ATen/ATen.h>

#include <cmath>

#include "../common/checks.h"
#include "render_triplane.h"

namespace nerfgan_kernels {
namespace fused {
namespace {

Points make_points(const at::Tensor& planes, const at::Tensor& weight0, const at::Tensor& bias0,
                   const at::Tensor& weight1, const at::Tensor& bias1, const at::Tensor& coords,
                   double box_warp) {
  check_planes_and_decoder("decode_triplane", planes, weight0, bias0, weight1, bias1);
  check_dim(coords, "coords", 3, "(N, M, 3)");
  check_size(coords, "coords", 2, 3, "(N, M, 3)");
  check_same_device(coords, "coords", planes, "planes");
  check_same_dtype(coords, "coords", planes, "planes");
  TORCH_CHECK(std::isfinite(box_warp) && box_warp > 0, "box_warp must be a positive number, got ",
              box_warp);
  Points p;
  p.Np = planes.size(0);
  p.Nc = coords.size(0);
  p.N = broadcast_batch(p.Np, "planes", p.Nc, "coords");
  p.M = coords.size(1);
  p.C = planes.size(2);
  p.H = planes.size(3);
  p.W = planes.size(4);
  p.Hd = weight0.size(0);
  p.O = weight1.size(0);
  p.scale = 2.0 / box_warp;
  p.planes_cl = planes.permute({0, 1, 3, 4, 2}).contiguous();
  p.w0 = weight0.contiguous();
  p.w0t = weight0.t().contiguous();
  p.b0 = bias0.contiguous();
  p.w1 = weight1.contiguous();
  p.w1t = weight1.t().contiguous();
  p.b1 = bias1.contiguous();
  p.coords = coords.contiguous();
  return p;
}

}  // namespace
}  // namespace fused

std::tuple<at::Tensor, at::Tensor> decode_triplane_forward(
    const at::Tensor& planes, const at::Tensor& weight0, const at::Tensor& bias0,
    const at::Tensor& weight1, const at::Tensor& bias1, const at::Tensor& coords,
    double box_warp) {
  const fused::Points p =
      fused::make_points(planes, weight0, bias0, weight1, bias1, coords, box_warp);
  const auto opts = planes.options();
  at::Tensor features = at::empty({p.N, p.M, p.O - 1}, opts);
  at::Tensor density = at::empty({p.N, p.M, 1}, opts);
  if (p.N * p.M > 0) {
    if (runs_cuda_kernels(planes)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
      fused::decode_forward_cuda(p, features, density);
#else
      TORCH_CHECK(false, "planes is a CUDA tensor but nerfgan_kernels was built without CUDA");
#endif
    } else {
      fused::decode_forward_cpu(p, features, density);
    }
  }
  return {features, density};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> decode_triplane_backward(
    const at::Tensor& grad_features, const at::Tensor& grad_density, const at::Tensor& planes,
    const at::Tensor& weight0, const at::Tensor& bias0, const at::Tensor& weight1,
    const at::Tensor& bias1, const at::Tensor& coords, double box_warp) {
  const fused::Points p =
      fused::make_points(planes, weight0, bias0, weight1, bias1, coords, box_warp);
  const auto opts = planes.options();
  auto upstream = [&](const at::Tensor& g, const char* name, at::IntArrayRef shape) {
    if (!g.defined()) return at::zeros(shape, opts);
    TORCH_CHECK(g.sizes() == shape, name, " must have shape ", shape, ", got ", g.sizes());
    check_same_device(g, name, planes, "planes");
    check_same_dtype(g, name, planes, "planes");
    return g.contiguous();
  };
  const at::Tensor g_features = upstream(grad_features, "grad_features", {p.N, p.M, p.O - 1});
  const at::Tensor g_density = upstream(grad_density, "grad_density", {p.N, p.M, 1});
  at::Tensor grad_planes_cl = at::zeros(p.planes_cl.sizes(), opts);
  at::Tensor g_w0t = at::zeros({p.C, p.Hd}, opts), g_b0 = at::zeros({p.Hd}, opts);
  at::Tensor g_w1t = at::zeros({p.Hd, p.O}, opts), g_b1 = at::zeros({p.O}, opts);
  if (p.N * p.M > 0) {
    if (runs_cuda_kernels(planes)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
      fused::decode_backward_cuda(p, g_features, g_density, grad_planes_cl, g_w0t, g_b0, g_w1t,
                                  g_b1);
#else
      TORCH_CHECK(false, "planes is a CUDA tensor but nerfgan_kernels was built without CUDA");
#endif
    } else {
      fused::decode_backward_cpu(p, g_features, g_density, grad_planes_cl, g_w0t, g_b0, g_w1t,
                                 g_b1);
    }
  }
  return {grad_planes_cl.permute({0, 1, 4, 2, 3}).contiguous(), g_w0t.t().contiguous(), g_b0,
          g_w1t.t().contiguous(), g_b1};
}

}  // namespace nerfgan_kernels
