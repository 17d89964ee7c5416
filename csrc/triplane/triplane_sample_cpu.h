// The CPU kernels of triplane_sample, one set per instruction set (cpu/capability.h).
//
//   planes_cl (Np, 3, H, W, C) contiguous, float32 / float64 / bfloat16;
//   coords (Nc, M, 3) contiguous, in the accumulation type (float64 for float64 planes, else
//   float32); out as triplane_sample.h states, in the planes' dtype.
#pragma once

#include <ATen/core/Tensor.h>

#include "triplane_sample.h"

namespace nerfgan_kernels {
namespace triplane {

// grad_planes: (Np, 3, H, W, C) in the accumulation type (written whole) or undefined;
// grad_coords_pp: (N, 3, M, 3) per-plane coordinate gradients (written whole) or undefined.
// accumulate: add into grad_planes instead of overwriting it (the fused renderer's scatter).
struct BackwardOutputs {
  at::Tensor grad_planes;
  at::Tensor grad_coords_pp;
  bool accumulate = false;
};

#define NGK_TRIPLANE_CPU_KERNELS(ns)                                                            \
  namespace ns {                                                                                \
  void forward(const at::Tensor& planes_cl, const at::Tensor& coords, double scale,            \
               Reduce reduce, at::Tensor& out);                                                 \
  void backward(const at::Tensor& grad_out, const at::Tensor& planes_cl,                       \
                const at::Tensor& coords, double scale, Reduce reduce, BackwardOutputs& outs); \
  }
NGK_TRIPLANE_CPU_KERNELS(baseline)
NGK_TRIPLANE_CPU_KERNELS(avx2)
NGK_TRIPLANE_CPU_KERNELS(avx512)
#undef NGK_TRIPLANE_CPU_KERNELS

}  // namespace triplane
}  // namespace nerfgan_kernels
