// Outputs of the ops' entry points.
#pragma once

#include <ATen/ATen.h>

namespace nerfgan_kernels {

// A dispatcher op returns defined tensors only: an output that was not asked for (an undefined
// tensor, e.g. a gradient whose need_* flag is false) becomes an empty (0,) tensor.
inline at::Tensor or_empty(const at::Tensor& t, const at::TensorOptions& options) {
  return t.defined() ? t : at::empty({0}, options);
}

}  // namespace nerfgan_kernels
