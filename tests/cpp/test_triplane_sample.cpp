// C++ consumer test: triplane_sample (CPU kernel) against ATen's grid_sampler, forward and backward.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdio>
#include <string>
#include <tuple>

#include "triplane/triplane_sample.h"

namespace {

double rel_err(const at::Tensor& out, const at::Tensor& ref) {
  const double scale = ref.abs().max().item<double>();
  return (out - ref).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

// EG3D's projection: scale by 2 / box_warp, planes (x,y), (x,z), (z,x) -> grid (N*3, M, 1, 2).
at::Tensor plane_grid(const at::Tensor& coords, double box_warp) {
  const auto x = coords * (2.0 / box_warp);
  const auto pair = [&](int a, int b) { return at::stack({x.select(2, a), x.select(2, b)}, 2); };
  const auto uv = at::stack({pair(0, 1), pair(0, 2), pair(2, 0)}, 1);  // (N, 3, M, 2)
  return uv.reshape({coords.size(0) * 3, coords.size(1), 1, 2});
}

}  // namespace

int main() {
  at::manual_seed(0);
  const int64_t N = 2, C = 7, H = 9, W = 13, M = 257;
  const double box_warp = 1.6;
  const auto planes = at::randn({N, 3, C, H, W});
  const auto coords = (at::rand({N, M, 3}) * 2 - 1) * 1.2 * box_warp / 2;  // some outside the box
  const auto flat_planes = planes.reshape({N * 3, C, H, W});
  const auto grid = plane_grid(coords, box_warp);

  const auto out = nerfgan_kernels::triplane_sample_forward(planes, coords, box_warp, "none");
  const auto ref = at::grid_sampler(flat_planes, grid, /*bilinear*/ 0, /*zeros*/ 0, false)
                       .reshape({N, 3, C, M})
                       .permute({0, 1, 3, 2});
  const double fwd_err = rel_err(out, ref);

  const auto grad = at::randn(out.sizes());
  const auto grads =
      nerfgan_kernels::triplane_sample_backward(grad, planes, coords, box_warp, "none", true, false);
  const auto grad_img = grad.permute({0, 1, 3, 2}).reshape({N * 3, C, M, 1});
  const auto ref_grads =
      at::grid_sampler_2d_backward(grad_img, flat_planes, grid, 0, 0, false, {true, false});
  const double bwd_err =
      rel_err(std::get<0>(grads), std::get<0>(ref_grads).reshape(planes.sizes()));

  // The same kernel through the dispatcher, as libtorch code without our headers calls it.
  const auto op = c10::Dispatcher::singleton()
                      .findSchemaOrThrow("nerfgan_kernels::triplane_sample", "")
                      .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double,
                                        const std::string&)>();
  const bool same = at::equal(op.call(planes, coords, box_warp, "none"), out);

  std::printf("triplane_sample forward rel err %.3g, planes grad rel err %.3g, dispatcher %s\n",
              fwd_err, bwd_err, same ? "equal" : "DIFFERENT");
  const bool ok = fwd_err <= 1e-5 && bwd_err <= 1e-5 && std::get<1>(grads).numel() == 0 && same;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
