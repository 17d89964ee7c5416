// Argument checks, layouts and device dispatch of render_triplane.
#include "render_triplane.h"

#include <ATen/ATen.h>

#include <cmath>

#include "../common/checks.h"

namespace nerfgan_kernels {
namespace fused {
namespace {

void check_same(const at::Tensor& t, const char* name, const at::Tensor& planes) {
  check_same_device(t, name, planes, "planes");
  check_same_dtype(t, name, planes, "planes");
}

}  // namespace

void check_planes_and_decoder(const char* op, const at::Tensor& planes, const at::Tensor& weight0,
                              const at::Tensor& bias0, const at::Tensor& weight1,
                              const at::Tensor& bias1) {
  check_dim(planes, "planes", 5, "(N, 3, C, H, W)");
  check_size(planes, "planes", 1, 3, "(N, 3, C, H, W)");
  const auto type = planes.scalar_type();
  TORCH_CHECK(type == at::kFloat || type == at::kDouble, "planes must be float32 or float64 for ",
              op, ", got ", type);
  TORCH_CHECK(planes.is_cpu() || runs_cuda_kernels(planes),
              "planes must be a CPU or CUDA tensor, got ", planes.device());
  const int64_t C = planes.size(2);
  check_dim(weight0, "weight0", 2, "(hidden, C)");
  const int64_t Hd = weight0.size(0);
  TORCH_CHECK(weight0.size(1) == C, "weight0 must have shape (hidden, C = ", C, "), got ",
              weight0.sizes());
  TORCH_CHECK(Hd >= 1 && Hd <= kMaxHidden, "weight0 must have 1 to ", kMaxHidden,
              " hidden units, got ", Hd);
  check_dim(weight1, "weight1", 2, "(1 + F, hidden)");
  const int64_t O = weight1.size(0);
  TORCH_CHECK(weight1.size(1) == Hd && O >= 2 && O <= kMaxOutput + 1,
              "weight1 must have shape (1 + F, hidden = ", Hd, ") with 1 <= F <= ", kMaxOutput,
              ", got ", weight1.sizes());
  TORCH_CHECK(bias0.dim() == 1 && bias0.size(0) == Hd, "bias0 must have shape (", Hd, ",), got ",
              bias0.sizes());
  TORCH_CHECK(bias1.dim() == 1 && bias1.size(0) == O, "bias1 must have shape (", O, ",), got ",
              bias1.sizes());
  for (const auto& [t, name] : {std::pair{weight0, "weight0"}, {bias0, "bias0"},
                                {weight1, "weight1"}, {bias1, "bias1"}}) {
    check_same_device(t, name, planes, "planes");
    check_same_dtype(t, name, planes, "planes");
  }
}

namespace {

Problem make_problem(const at::Tensor& planes, const at::Tensor& weight0, const at::Tensor& bias0,
                     const at::Tensor& weight1, const at::Tensor& bias1,
                     const at::Tensor& ray_origins, const at::Tensor& ray_directions,
                     const at::Tensor& depths, const at::Tensor& depth_range, double box_warp,
                     bool white_back, double t_min, double alpha_min) {
  check_planes_and_decoder("render_triplane", planes, weight0, bias0, weight1, bias1);
  const int64_t C = planes.size(2), Hd = weight0.size(0), O = weight1.size(0);
  check_dim(ray_origins, "ray_origins", 3, "(N, R, 3)");
  check_size(ray_origins, "ray_origins", 2, 3, "(N, R, 3)");
  TORCH_CHECK(ray_directions.sizes() == ray_origins.sizes(),
              "ray_directions must have the shape of ray_origins ", ray_origins.sizes(), ", got ",
              ray_directions.sizes());
  check_dim(depths, "depths", 4, "(N, R, S, 1)");
  const int64_t R = ray_origins.size(1), S = depths.size(2);
  TORCH_CHECK(depths.size(1) == R && depths.size(3) == 1 && S >= 1,
              "depths must have shape (N, R = ", R, ", S, 1) with S >= 1, got ", depths.sizes());
  TORCH_CHECK(depth_range.dim() == 1 && depth_range.size(0) == 2,
              "depth_range must have shape (2,) = [lo, hi], got ", depth_range.sizes());
  for (const auto& [t, name] : {std::pair{ray_origins, "ray_origins"},
                                {ray_directions, "ray_directions"},
                                {depths, "depths"}, {depth_range, "depth_range"}}) {
    check_same(t, name, planes);
  }
  const int64_t Np = planes.size(0), Nr = ray_origins.size(0), Nd = depths.size(0);
  int64_t N = broadcast_batch(Np, "planes", Nr, "ray_origins");
  N = broadcast_batch(N, "planes / ray_origins", Nd, "depths");
  TORCH_CHECK(std::isfinite(box_warp) && box_warp > 0, "box_warp must be a positive number, got ",
              box_warp);
  TORCH_CHECK(std::isfinite(t_min) && t_min >= 0 && t_min < 1, "t_min must be in [0, 1), got ",
              t_min);
  TORCH_CHECK(std::isfinite(alpha_min) && alpha_min >= 0 && alpha_min < 1,
              "alpha_min must be in [0, 1), got ", alpha_min);
  const at::Tensor range = depth_range.to(at::kDouble).cpu();
  Problem p;
  p.planes_cl = planes.permute({0, 1, 3, 4, 2}).contiguous();
  p.w0 = weight0.contiguous();
  p.w0t = weight0.t().contiguous();
  p.b0 = bias0.contiguous();
  p.w1 = weight1.contiguous();
  p.w1t = weight1.t().contiguous();
  p.b1 = bias1.contiguous();
  p.origins = ray_origins.contiguous();
  p.directions = ray_directions.contiguous();
  p.depths = depths.reshape({Nd, R, S}).contiguous();
  p.Np = Np;
  p.Nr = Nr;
  p.Nd = Nd;
  p.Nk = 0;  // no known densities
  p.N = N;
  p.R = R;
  p.S = S;
  p.C = C;
  p.H = planes.size(3);
  p.W = planes.size(4);
  p.Hd = Hd;
  p.O = O;
  p.scale = 2.0 / box_warp;
  p.lo = range[0].item<double>();
  p.hi = range[1].item<double>();
  p.t_min = t_min;
  p.alpha_min = alpha_min;
  p.white_back = white_back;
  return p;
}

}  // namespace
}  // namespace fused

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> render_triplane_forward(
    const at::Tensor& planes, const at::Tensor& weight0, const at::Tensor& bias0,
    const at::Tensor& weight1, const at::Tensor& bias1, const at::Tensor& ray_origins,
    const at::Tensor& ray_directions, const at::Tensor& depths, const at::Tensor& depth_range,
    double box_warp, bool white_back, double t_min, double alpha_min,
    const std::optional<at::Tensor>& known_densities) {
  fused::Problem p =
      fused::make_problem(planes, weight0, bias0, weight1, bias1, ray_origins, ray_directions,
                          depths, depth_range, box_warp, white_back, t_min, alpha_min);
  p.Nk = 0;
  if (known_densities.has_value() && known_densities->defined()) {
    const at::Tensor& k = *known_densities;
    TORCH_CHECK(k.dim() == 4 && (k.size(0) == p.N || k.size(0) == 1) && k.size(1) == p.R &&
                    k.size(2) == p.S && k.size(3) == 1,
                "known_densities must have shape (N = ", p.N, " or 1, R = ", p.R, ", S = ", p.S,
                ", 1), got ", k.sizes());
    check_same_device(k, "known_densities", planes, "planes");
    check_same_dtype(k, "known_densities", planes, "planes");
    p.Nk = k.size(0);
    p.known = k.reshape({p.Nk, p.R, p.S}).contiguous();
  }
  const auto opts = planes.options();
  at::Tensor rgb = at::empty({p.N, p.R, p.O - 1}, opts);
  at::Tensor depth = at::empty({p.N, p.R, 1}, opts);
  at::Tensor weights = at::empty({p.N, p.R, std::max<int64_t>(p.S - 1, 0), 1}, opts);
  at::Tensor weights_sum = at::empty({p.N, p.R, 1}, opts);
  at::Tensor stats = at::empty({p.N, p.R, 2 + p.S}, opts);
  if (p.N * p.R > 0) {
    if (runs_cuda_kernels(planes)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
      fused::forward_cuda(p, rgb, depth, weights, weights_sum, stats);
#else
      TORCH_CHECK(false, "planes is a CUDA tensor but nerfgan_kernels was built without CUDA");
#endif
    } else {
      fused::forward_cpu(p, rgb, depth, weights, weights_sum, stats);
    }
  }
  return {rgb, depth, weights, weights_sum, stats};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> render_triplane_backward(
    const at::Tensor& grad_rgb, const at::Tensor& grad_depth, const at::Tensor& grad_weights,
    const at::Tensor& grad_weights_sum, const at::Tensor& planes, const at::Tensor& weight0,
    const at::Tensor& bias0, const at::Tensor& weight1, const at::Tensor& bias1,
    const at::Tensor& ray_origins, const at::Tensor& ray_directions, const at::Tensor& depths,
    const at::Tensor& depth_range, const at::Tensor& stats, double box_warp, bool white_back,
    double t_min, double alpha_min) {
  const fused::Problem p =
      fused::make_problem(planes, weight0, bias0, weight1, bias1, ray_origins, ray_directions,
                          depths, depth_range, box_warp, white_back, t_min, alpha_min);
  const auto opts = planes.options();
  const int64_t N = p.N, R = p.R, S = p.S;
  auto upstream = [&](const at::Tensor& g, const char* name, at::IntArrayRef shape) {
    if (!g.defined()) return at::zeros(shape, opts);
    TORCH_CHECK(g.sizes() == shape, name, " must have shape ", shape, ", got ", g.sizes());
    check_same_device(g, name, planes, "planes");
    check_same_dtype(g, name, planes, "planes");
    return g.contiguous();
  };
  const at::Tensor g_rgb = upstream(grad_rgb, "grad_rgb", {N, R, p.O - 1});
  const at::Tensor g_depth = upstream(grad_depth, "grad_depth", {N, R, 1});
  const at::Tensor g_weights =
      upstream(grad_weights, "grad_weights", {N, R, std::max<int64_t>(S - 1, 0), 1});
  const at::Tensor g_ws = upstream(grad_weights_sum, "grad_weights_sum", {N, R, 1});
  TORCH_CHECK(stats.sizes() == at::IntArrayRef({N, R, 2 + S}),
              "stats must have shape (N, R, 2 + S) as returned by render_triplane, got ",
              stats.sizes());
  at::Tensor grad_planes_cl = at::zeros(p.planes_cl.sizes(), opts);
  at::Tensor g_w0t = at::zeros({p.C, p.Hd}, opts), g_b0 = at::zeros({p.Hd}, opts);
  at::Tensor g_w1t = at::zeros({p.Hd, p.O}, opts), g_b1 = at::zeros({p.O}, opts);
  if (N * R > 0) {
    check_same_device(stats, "stats", planes, "planes");
    check_same_dtype(stats, "stats", planes, "planes");
    if (runs_cuda_kernels(planes)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
      fused::backward_cuda(p, g_rgb, g_depth, g_weights, g_ws, stats.contiguous(), grad_planes_cl,
                           g_w0t, g_b0, g_w1t, g_b1);
#else
      TORCH_CHECK(false, "planes is a CUDA tensor but nerfgan_kernels was built without CUDA");
#endif
    } else {
      fused::backward_cpu(p, g_rgb, g_depth, g_weights, g_ws, stats.contiguous(), grad_planes_cl,
                          g_w0t, g_b0, g_w1t, g_b1);
    }
  }
  // The planes' gradient keeps the kernels' channels-last layout (no copy of plane size).
  return {grad_planes_cl.permute({0, 1, 4, 2, 3}), g_w0t.t().contiguous(), g_b0,
          g_w1t.t().contiguous(), g_b1};
}

}  // namespace nerfgan_kernels
