// The dispatcher registration of every op: torch.ops.nerfgan_kernels.<op> in Python, and
// c10::Dispatcher (torch::Dispatcher::singleton().findSchemaOrThrow("nerfgan_kernels::<op>", ""))
// for libtorch users. Schemas and the CPU / CUDA kernels are registered here; the fake (meta)
// kernels and the autograd formulas are registered from Python (nerfgan_kernels/_library.py).
//
// Each `*_backward` op is the gradient of its forward op; they are ops of their own so that
// torch.compile and torch.export see through the backward as well.
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include <string>

#include "common/macros.h"
#include "render/composite.h"
#include "render/decode_triplane.h"
#include "render/importance.h"
#include "render/render_triplane.h"
#include "triplane/triplane_sample.h"

// TORCH_LIBRARY stringifies its argument: expand NGK_LIBRARY first.
#define NGK_TORCH_LIBRARY(ns, m) TORCH_LIBRARY(ns, m)
#define NGK_TORCH_LIBRARY_IMPL(ns, key, m) TORCH_LIBRARY_IMPL(ns, key, m)
#define NGK_STRING_(x) #x
#define NGK_STRING(x) NGK_STRING_(x)

NGK_TORCH_LIBRARY(NGK_LIBRARY, m) {
  m.set_python_module("nerfgan_kernels._library");
  m.def("triplane_sample(Tensor planes, Tensor coords, float box_warp, str reduce) -> Tensor");
  m.def(
      "triplane_sample_backward(Tensor grad_out, Tensor planes, Tensor coords, float box_warp, "
      "str reduce, bool need_planes, bool need_coords) -> (Tensor grad_planes, "
      "Tensor grad_coords)");
  m.def(
      "composite(Tensor colors, Tensor densities, Tensor depths, Tensor depth_range, "
      "bool white_back, float t_min, float alpha_min) -> (Tensor rgb, Tensor depth, "
      "Tensor weights, Tensor stats)");
  m.def(
      "composite_backward(Tensor grad_rgb, Tensor grad_depth, Tensor grad_weights, "
      "Tensor colors, Tensor densities, Tensor depths, Tensor depth_range, Tensor stats, "
      "bool white_back, float t_min, float alpha_min) -> (Tensor grad_colors, "
      "Tensor grad_densities)");
  m.def("sample_pdf(Tensor depths_coarse, Tensor weights_coarse, Tensor u) -> Tensor");
  m.def("merge_samples_index(Tensor depths_a, Tensor depths_b) -> (Tensor depths, Tensor index)");
  m.def("merge_gather(Tensor index, Tensor values_a, Tensor values_b) -> Tensor");
  m.def(
      "merge_gather_backward(Tensor grad_out, Tensor index, int Sa, int Sb, bool need_a, "
      "bool need_b) -> (Tensor grad_a, Tensor grad_b)");
  m.def(
      "render_triplane(Tensor planes, Tensor weight0, Tensor bias0, Tensor weight1, "
      "Tensor bias1, Tensor ray_origins, Tensor ray_directions, Tensor depths, "
      "Tensor depth_range, float box_warp, bool white_back, float t_min, float alpha_min, "
      "Tensor? known_densities=None) -> (Tensor rgb, Tensor depth, Tensor weights, "
      "Tensor weights_sum, Tensor stats)");
  m.def(
      "render_triplane_backward(Tensor grad_rgb, Tensor grad_depth, Tensor grad_weights, "
      "Tensor grad_weights_sum, Tensor planes, Tensor weight0, Tensor bias0, Tensor weight1, "
      "Tensor bias1, Tensor ray_origins, Tensor ray_directions, Tensor depths, "
      "Tensor depth_range, Tensor stats, float box_warp, bool white_back, float t_min, "
      "float alpha_min) -> (Tensor grad_planes, Tensor grad_weight0, Tensor grad_bias0, "
      "Tensor grad_weight1, Tensor grad_bias1)");
  m.def(
      "decode_triplane(Tensor planes, Tensor weight0, Tensor bias0, Tensor weight1, "
      "Tensor bias1, Tensor coords, float box_warp) -> (Tensor features, Tensor density)");
  m.def(
      "decode_triplane_backward(Tensor grad_features, Tensor grad_density, Tensor planes, "
      "Tensor weight0, Tensor bias0, Tensor weight1, Tensor bias1, Tensor coords, "
      "float box_warp) -> (Tensor grad_planes, Tensor grad_weight0, Tensor grad_bias0, "
      "Tensor grad_weight1, Tensor grad_bias1)");
}

namespace {

// The entry points check their arguments and pick the CPU or CUDA kernels themselves, so one
// table serves both dispatch keys.
void register_kernels(torch::Library& m) {
  using namespace nerfgan_kernels;
  m.impl("triplane_sample", &triplane_sample_forward);
  m.impl("triplane_sample_backward", &triplane_sample_backward);
  m.impl("composite", &composite_forward);
  m.impl("composite_backward", &composite_backward);
  m.impl("sample_pdf", &sample_pdf_forward);
  m.impl("merge_samples_index", &merge_samples_index);
  m.impl("merge_gather", &merge_gather_forward);
  m.impl("merge_gather_backward", &merge_gather_backward);
  m.impl("render_triplane", &render_triplane_forward);
  m.impl("render_triplane_backward", &render_triplane_backward);
  m.impl("decode_triplane", &decode_triplane_forward);
  m.impl("decode_triplane_backward", &decode_triplane_backward);
}

}  // namespace

// ---- autocast: the mixed-dtype contract. Features (planes, colours, densities) in float32 are
// cast to the autocast dtype, geometry (coords, depths, depth ranges) stays float32; float64 and
// tensors already in half precision are left alone. The other ops need no rule: they take
// geometry only, or move values without arithmetic (merge_gather).
namespace {

template <c10::DeviceType device>
struct Autocast {
  static constexpr c10::DispatchKey key = device == c10::DeviceType::CUDA
                                               ? c10::DispatchKey::AutocastCUDA
                                               : c10::DispatchKey::AutocastCPU;

  static at::Tensor features(const at::Tensor& t) {
    return t.scalar_type() == at::kFloat ? t.to(at::autocast::get_autocast_dtype(device)) : t;
  }

  static at::Tensor triplane_sample(const at::Tensor& planes, const at::Tensor& coords,
                                    double box_warp, const std::string& reduce) {
    static const auto op = c10::Dispatcher::singleton()
                               .findSchemaOrThrow(NGK_STRING(NGK_LIBRARY) "::triplane_sample", "")
                               .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double,
                                                 const std::string&)>();
    const at::Tensor p = features(planes);
    const c10::impl::ExcludeDispatchKeyGuard no_autocast(key);
    return op.call(p, coords, box_warp, reduce);
  }

  static std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite(
      const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
      const at::Tensor& depth_range, bool white_back, double t_min, double alpha_min) {
    static const auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow(NGK_STRING(NGK_LIBRARY) "::composite", "")
            .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, bool,
                double, double)>();
    const at::Tensor c = features(colors), s = features(densities);
    const c10::impl::ExcludeDispatchKeyGuard no_autocast(key);
    return op.call(c, s, depths, depth_range, white_back, t_min, alpha_min);
  }
};

}  // namespace

NGK_TORCH_LIBRARY_IMPL(NGK_LIBRARY, AutocastCPU, m) {
  m.impl("triplane_sample", &Autocast<c10::DeviceType::CPU>::triplane_sample);
  m.impl("composite", &Autocast<c10::DeviceType::CPU>::composite);
}
NGK_TORCH_LIBRARY_IMPL(NGK_LIBRARY, AutocastCUDA, m) {
  m.impl("triplane_sample", &Autocast<c10::DeviceType::CUDA>::triplane_sample);
  m.impl("composite", &Autocast<c10::DeviceType::CUDA>::composite);
}

NGK_TORCH_LIBRARY_IMPL(NGK_LIBRARY, CPU, m) { register_kernels(m); }
#ifdef NERFGAN_KERNELS_WITH_CUDA
NGK_TORCH_LIBRARY_IMPL(NGK_LIBRARY, CUDA, m) { register_kernels(m); }
#endif
