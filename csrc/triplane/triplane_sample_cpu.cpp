// CPU entry of triplane_sample: output allocation and the choice of instruction set
// (cpu/capability.h); the kernels are triplane_sample_cpu_kernels.h.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>

#include "../cpu/capability.h"
#include "../cpu/memory.h"
#include "triplane_sample.h"
#include "triplane_sample_cpu.h"

namespace nerfgan_kernels {
namespace triplane {

at::Tensor forward_cpu(const at::Tensor& planes_cl, const at::Tensor& coords, double scale,
                       Reduce reduce) {
  const Sizes s = sizes_of(planes_cl, coords);
  at::Tensor out = reduce == Reduce::kNone
                       ? cpu::empty_output({s.N, 3, s.M, s.C}, planes_cl.options())
                       : cpu::empty_output({s.N, s.M, s.C}, planes_cl.options());
  if (out.numel() == 0) return out;
  switch (cpu::current()) {
    case cpu::Capability::kAvx512:
      avx512::forward(planes_cl, coords, scale, reduce, out);
      break;
    case cpu::Capability::kAvx2:
      avx2::forward(planes_cl, coords, scale, reduce, out);
      break;
    default:
      baseline::forward(planes_cl, coords, scale, reduce, out);
  }
  return out;
}

namespace {
void backward_dispatch(const at::Tensor& grad_out, const at::Tensor& planes_cl,
                       const at::Tensor& coords, double scale, Reduce reduce,
                       BackwardOutputs& outs) {
  switch (cpu::current()) {
    case cpu::Capability::kAvx512:
      avx512::backward(grad_out, planes_cl, coords, scale, reduce, outs);
      break;
    case cpu::Capability::kAvx2:
      avx2::backward(grad_out, planes_cl, coords, scale, reduce, outs);
      break;
    default:
      baseline::backward(grad_out, planes_cl, coords, scale, reduce, outs);
  }
}
}  // namespace

void accumulate_planes_grad_cpu(const at::Tensor& grad_out, const at::Tensor& planes_cl,
                                const at::Tensor& coords, double scale, Reduce reduce,
                                at::Tensor& grad_planes_cl) {
  const Sizes s = sizes_of(planes_cl, coords);
  if (s.N * s.M == 0) return;
  BackwardOutputs outs;
  outs.grad_planes = grad_planes_cl;
  outs.accumulate = true;
  backward_dispatch(grad_out, planes_cl, coords, scale, reduce, outs);
}

std::vector<at::Tensor> backward_cpu(const at::Tensor& grad_out, const at::Tensor& planes_cl,
                                     const at::Tensor& coords, double scale, Reduce reduce,
                                     bool need_planes, bool need_coords) {
  const Sizes s = sizes_of(planes_cl, coords);
  const auto acc = planes_cl.options().dtype(at::toOpMathType(planes_cl.scalar_type()));
  BackwardOutputs outs;
  if (need_planes) outs.grad_planes = cpu::empty_output(planes_cl.sizes(), acc);
  if (need_coords) outs.grad_coords_pp = cpu::empty_output({s.N, 3, s.M, 3}, coords.options());
  if (s.N * s.M == 0) {  // nothing sampled: zero gradients
    if (need_planes) outs.grad_planes.zero_();
    if (need_coords) outs.grad_coords_pp.zero_();
  } else if (need_planes || need_coords) {
    backward_dispatch(grad_out, planes_cl, coords, scale, reduce, outs);
  }
  at::Tensor grad_planes = outs.grad_planes, grad_coords;
  if (need_planes && grad_planes.scalar_type() != planes_cl.scalar_type()) {
    grad_planes = grad_planes.to(planes_cl.scalar_type());
  }
  if (need_coords) {
    grad_coords = outs.grad_coords_pp.sum(1);  // (N, M, 3)
    if (s.Nc == 1 && s.N > 1) grad_coords = grad_coords.sum(0, /*keepdim=*/true);
  }
  return {grad_planes, grad_coords};
}

}  // namespace triplane
}  // namespace nerfgan_kernels
