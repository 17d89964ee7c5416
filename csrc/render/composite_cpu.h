// The CPU kernels of composite, one set per instruction set (cpu/capability.h). Tensors as
// composite.h states them, contiguous; outputs preallocated.
#pragma once

#include <ATen/core/Tensor.h>

#include "composite.h"

namespace nerfgan_kernels {
namespace composite {

// One call's inputs: colours / densities in scalar_t, geometry in acc_t (the mixed-dtype rule).
template <typename scalar_t, typename acc_t>
struct Inputs {
  const scalar_t* colors;     // (rays, S, C)
  const scalar_t* densities;  // (rays, S)
  const acc_t* depths;        // (rays, S)
  int64_t rays, S, C;
  acc_t lo, hi;
  bool white_back;
  acc_t t_min, alpha_min;
};

template <typename scalar_t, typename acc_t>
Inputs<scalar_t, acc_t> make_inputs(const at::Tensor& colors, const at::Tensor& densities,
                                    const at::Tensor& depths, const at::Tensor& depth_range,
                                    Options opt) {
  const acc_t* range = depth_range.data_ptr<acc_t>();
  return {colors.data_ptr<scalar_t>(), densities.data_ptr<scalar_t>(), depths.data_ptr<acc_t>(),
          colors.size(0) * colors.size(1), colors.size(2), colors.size(3), range[0], range[1],
          opt.white_back, static_cast<acc_t>(opt.t_min), static_cast<acc_t>(opt.alpha_min)};
}

template <typename scalar_t, typename acc_t>
struct Forward {
  scalar_t* rgb;   // (rays, C)
  acc_t* depth;    // (rays)
  acc_t* weights;  // (rays, S - 1)
  acc_t* stats;    // (rays, 3)
};

template <typename scalar_t, typename acc_t>
struct Backward {
  const scalar_t* grad_rgb;    // (rays, C)
  const acc_t* grad_depth;     // (rays)
  const acc_t* grad_weights;   // (rays, S - 1)
  const acc_t* stats;          // (rays, 3) from the forward
  scalar_t* grad_colors;       // (rays, S, C), every entry written
  scalar_t* grad_densities;    // (rays, S), every entry written
};

#define NGK_COMPOSITE_CPU_KERNELS(ns)                                                          \
  namespace ns {                                                                               \
  void forward(const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths, \
               const at::Tensor& depth_range, Options opt, at::Tensor& rgb, at::Tensor& depth,  \
               at::Tensor& weights, at::Tensor& stats);                                         \
  void backward(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,                      \
                const at::Tensor& grad_weights, const at::Tensor& colors,                      \
                const at::Tensor& densities, const at::Tensor& depths,                         \
                const at::Tensor& depth_range, const at::Tensor& stats, Options opt,           \
                at::Tensor& grad_colors, at::Tensor& grad_densities);                          \
  }
NGK_COMPOSITE_CPU_KERNELS(baseline)
NGK_COMPOSITE_CPU_KERNELS(avx2)
NGK_COMPOSITE_CPU_KERNELS(avx512)
#undef NGK_COMPOSITE_CPU_KERNELS

}  // namespace composite
}  // namespace nerfgan_kernels
