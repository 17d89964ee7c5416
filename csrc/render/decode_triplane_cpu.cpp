// CPU entry of decode_triplane: the choice of instruction set (cpu/capability.h); the kernels
// are decode_triplane_cpu_kernels.h.
#include "../cpu/capability.h"
#include "decode_triplane.h"

namespace nerfgan_kernels {
namespace fused {

#define NGK_DECODE_CPU_KERNELS(ns)                                                          \
  namespace ns {                                                                            \
  void decode_forward(const Points& p, at::Tensor& features, at::Tensor& density);          \
  void decode_backward(const Points& p, const at::Tensor& grad_features,                    \
                       const at::Tensor& grad_density, at::Tensor& grad_planes_cl,          \
                       at::Tensor& g_w0t, at::Tensor& g_b0, at::Tensor& g_w1t,              \
                       at::Tensor& g_b1);                                                   \
  }
NGK_DECODE_CPU_KERNELS(baseline)
NGK_DECODE_CPU_KERNELS(avx2)
NGK_DECODE_CPU_KERNELS(avx512)
#undef NGK_DECODE_CPU_KERNELS

void decode_forward_cpu(const Points& p, at::Tensor& features, at::Tensor& density) {
  switch (cpu::current()) {
    case cpu::Capability::kAvx512:
      return avx512::decode_forward(p, features, density);
    case cpu::Capability::kAvx2:
      return avx2::decode_forward(p, features, density);
    default:
      return baseline::decode_forward(p, features, density);
  }
}

void decode_backward_cpu(const Points& p, const at::Tensor& grad_features,
                         const at::Tensor& grad_density, at::Tensor& grad_planes_cl,
                         at::Tensor& g_w0t, at::Tensor& g_b0, at::Tensor& g_w1t,
                         at::Tensor& g_b1) {
  switch (cpu::current()) {
    case cpu::Capability::kAvx512:
      return avx512::decode_backward(p, grad_features, grad_density, grad_planes_cl, g_w0t,
                                     g_b0, g_w1t, g_b1);
    case cpu::Capability::kAvx2:
      return avx2::decode_backward(p, grad_features, grad_density, grad_planes_cl, g_w0t, g_b0,
                                   g_w1t, g_b1);
    default:
      return baseline::decode_backward(p, grad_features, grad_density, grad_planes_cl, g_w0t,
                                       g_b0, g_w1t, g_b1);
  }
}

}  // namespace fused
}  // namespace nerfgan_kernels
