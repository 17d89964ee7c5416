// CPU entry of render_triplane: the choice of instruction set (cpu/capability.h); the kernels
// are render_triplane_cpu_kernels.h.
#include "../cpu/capability.h"
#include "render_triplane.h"

namespace nerfgan_kernels {
namespace fused {

#define NGK_FUSED_CPU_KERNELS(ns)                                                              \
  namespace ns {                                                                               \
  void forward(const Problem& p, at::Tensor& rgb, at::Tensor& depth, at::Tensor& weights,     \
               at::Tensor& weights_sum, at::Tensor& stats);                                    \
  void backward(const Problem& p, const at::Tensor& grad_rgb, const at::Tensor& grad_depth,   \
                const at::Tensor& grad_weights, const at::Tensor& grad_weights_sum,           \
                const at::Tensor& stats, at::Tensor& grad_planes_cl, at::Tensor& g_w0t,       \
                at::Tensor& g_b0, at::Tensor& g_w1t, at::Tensor& g_b1);                       \
  }
NGK_FUSED_CPU_KERNELS(baseline)
NGK_FUSED_CPU_KERNELS(avx2)
NGK_FUSED_CPU_KERNELS(avx512)
#undef NGK_FUSED_CPU_KERNELS

void forward_cpu(const Problem& p, at::Tensor& rgb, at::Tensor& depth, at::Tensor& weights,
                 at::Tensor& weights_sum, at::Tensor& stats) {
  switch (cpu::current()) {
    case cpu::Capability::kAvx512:
      return avx512::forward(p, rgb, depth, weights, weights_sum, stats);
    case cpu::Capability::kAvx2:
      return avx2::forward(p, rgb, depth, weights, weights_sum, stats);
    default:
      return baseline::forward(p, rgb, depth, weights, weights_sum, stats);
  }
}

void backward_cpu(const Problem& p, const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                  const at::Tensor& grad_weights, const at::Tensor& grad_weights_sum,
                  const at::Tensor& stats, at::Tensor& grad_planes_cl, at::Tensor& g_w0t,
                  at::Tensor& g_b0, at::Tensor& g_w1t, at::Tensor& g_b1) {
  switch (cpu::current()) {
    case cpu::Capability::kAvx512:
      return avx512::backward(p, grad_rgb, grad_depth, grad_weights, grad_weights_sum, stats,
                              grad_planes_cl, g_w0t, g_b0, g_w1t, g_b1);
    case cpu::Capability::kAvx2:
      return avx2::backward(p, grad_rgb, grad_depth, grad_weights, grad_weights_sum, stats,
                            grad_planes_cl, g_w0t, g_b0, g_w1t, g_b1);
    default:
      return baseline::backward(p, grad_rgb, grad_depth, grad_weights, grad_weights_sum, stats,
                                grad_planes_cl, g_w0t, g_b0, g_w1t, g_b1);
  }
}

}  // namespace fused
}  // namespace nerfgan_kernels
