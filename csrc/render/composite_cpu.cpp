// CPU entry of composite: the choice of instruction set (cpu/capability.h); the kernels are
// composite_cpu_kernels.h.
#include "composite_cpu.h"

#include "../cpu/capability.h"

namespace nerfgan_kernels {
namespace composite {

void forward_cpu(const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
                 const at::Tensor& depth_range, Options opt, at::Tensor& rgb, at::Tensor& depth,
                 at::Tensor& weights, at::Tensor& stats) {
  if (colors.size(0) * colors.size(1) == 0) return;
  switch (cpu::current()) {
    case cpu::Capability::kAvx512:
      return avx512::forward(colors, densities, depths, depth_range, opt, rgb, depth, weights,
                             stats);
    case cpu::Capability::kAvx2:
      return avx2::forward(colors, densities, depths, depth_range, opt, rgb, depth, weights, stats);
    default:
      return baseline::forward(colors, densities, depths, depth_range, opt, rgb, depth, weights,
                               stats);
  }
}

void backward_cpu(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                  const at::Tensor& grad_weights, const at::Tensor& colors,
                  const at::Tensor& densities, const at::Tensor& depths,
                  const at::Tensor& depth_range, const at::Tensor& stats, Options opt,
                  at::Tensor& grad_colors, at::Tensor& grad_densities) {
  if (colors.size(0) * colors.size(1) == 0) return;
  switch (cpu::current()) {
    case cpu::Capability::kAvx512:
      return avx512::backward(grad_rgb, grad_depth, grad_weights, colors, densities, depths,
                              depth_range, stats, opt, grad_colors, grad_densities);
    case cpu::Capability::kAvx2:
      return avx2::backward(grad_rgb, grad_depth, grad_weights, colors, densities, depths,
                            depth_range, stats, opt, grad_colors, grad_densities);
    default:
      return baseline::backward(grad_rgb, grad_depth, grad_weights, colors, densities, depths,
                                depth_range, stats, opt, grad_colors, grad_densities);
  }
}

}  // namespace composite
}  // namespace nerfgan_kernels
