// Argument checks shared by every op. Messages name the argument and what was expected.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <initializer_list>
#include <string>

namespace nerfgan_kernels {

// Whether t goes to the CUDA kernels. In the emulated build (NGK_EMULATE_CUDA, tests/emulated)
// the CUDA kernels run on the host and CPU tensors stand in for CUDA ones.
inline bool runs_cuda_kernels(const at::Tensor& t) {
#if defined(NGK_EMULATE_CUDA)
  return t.is_cpu();
#else
  return t.is_cuda();
#endif
}

inline std::string dtype_list(std::initializer_list<at::ScalarType> types) {
  std::string out;
  for (auto t : types) {
    if (!out.empty()) out += ", ";
    out += c10::toString(t);
  }
  return out;
}

inline void check_dim(const at::Tensor& t, const char* name, int64_t dim, const char* shape) {
  TORCH_CHECK(t.dim() == dim, name, " must have shape ", shape, " (", dim, " dimensions), got ",
              t.sizes());
}

inline void check_size(const at::Tensor& t, const char* name, int64_t dim, int64_t size,
                       const char* shape) {
  TORCH_CHECK(t.size(dim) == size, name, " must have shape ", shape, " with size ", size,
              " in dimension ", dim, ", got ", t.sizes());
}

// Features (planes, colours, values): float32/float64/bfloat16 on the CPU, also float16 on CUDA.
inline void check_float_dtype(const at::Tensor& t, const char* name) {
  const auto type = t.scalar_type();
  const bool full = type == at::kFloat || type == at::kDouble;
  if (runs_cuda_kernels(t)) {
    TORCH_CHECK(full || type == at::kHalf || type == at::kBFloat16, name,
                " must be float32, float64, float16 or bfloat16 on CUDA, got ", type);
  } else {
    TORCH_CHECK(full || type == at::kBFloat16, name,
                " must be float32, float64 or bfloat16 on the CPU, got ", type);
  }
}

// The mixed-dtype contract: geometry (coords, depths, depth ranges) is never rounded to half
// precision. It is float64 with float64 features, float32 with any other feature dtype.
inline at::ScalarType geometry_dtype(at::ScalarType features) {
  return features == at::kDouble ? at::kDouble : at::kFloat;
}

inline void check_geometry_dtype(const at::Tensor& t, const char* name, const at::Tensor& features,
                                 const char* features_name) {
  const auto want = geometry_dtype(features.scalar_type());
  TORCH_CHECK(t.scalar_type() == want, name, " must be ", want, " for ", features.scalar_type(),
              " ", features_name, " (geometry stays float32, or float64 with float64 ",
              features_name, "), got ", t.scalar_type());
}

inline void check_same_device(const at::Tensor& a, const char* name_a, const at::Tensor& b,
                              const char* name_b) {
  TORCH_CHECK(a.device() == b.device(), name_a, " and ", name_b,
              " must be on the same device, got ", a.device(), " and ", b.device());
}

inline void check_same_dtype(const at::Tensor& a, const char* name_a, const at::Tensor& b,
                             const char* name_b) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), name_a, " and ", name_b,
              " must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
}

// Broadcast rule shared by the batched ops: equal batch sizes, or one of them 1.
inline int64_t broadcast_batch(int64_t a, const char* name_a, int64_t b, const char* name_b) {
  TORCH_CHECK(a == b || a == 1 || b == 1, "batch sizes of ", name_a, " (", a, ") and ", name_b,
              " (", b, ") must be equal or one of them 1");
  return (a == 1) ? b : a;
}

}  // namespace nerfgan_kernels
