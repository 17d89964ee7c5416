// Argument checks and device dispatch for sample_pdf and merge_samples.
#include "importance.h"

#include "../common/checks.h"
#include "../common/outputs.h"
#include "../cpu/memory.h"

namespace nerfgan_kernels {
namespace importance {
namespace {

// Depths, weights and u: float32 or float64 on either device.
void check_depth_dtype(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
              " must be float32 or float64, got ", t.scalar_type());
}

void check_device(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cpu() || t.is_cuda(), name, " must be a CPU or CUDA tensor, got ", t.device());
#ifndef NERFGAN_KERNELS_WITH_CUDA
  TORCH_CHECK(!t.is_cuda(), name, " is a CUDA tensor but nerfgan_kernels was built without CUDA");
#endif
}

void check_index(const at::Tensor& index, int64_t N, int64_t R, int64_t S) {
  TORCH_CHECK(index.scalar_type() == at::kLong, "index must be int64, got ", index.scalar_type());
  TORCH_CHECK(index.dim() == 3 && index.size(0) == N && index.size(1) == R && index.size(2) == S,
              "index must have shape (N, R, Sa + Sb) = (", N, ", ", R, ", ", S, "), got ",
              index.sizes());
}

// A (N, R, S, C) values tensor matching index's rays.
void check_values(const at::Tensor& v, const char* name, const at::Tensor& index, int64_t S,
                  const char* shape) {
  check_dim(v, name, 4, shape);
  TORCH_CHECK(v.size(0) == index.size(0) && v.size(1) == index.size(1) && v.size(2) == S, name,
              " must have shape ", shape, " with (N, R) = (", index.size(0), ", ", index.size(1),
              ") and ", S, " samples, got ", v.sizes());
  check_same_device(v, name, index, "index");
  check_float_dtype(v, name);
}

}  // namespace
}  // namespace importance

at::Tensor sample_pdf_forward(const at::Tensor& depths_coarse, const at::Tensor& weights_coarse,
                              const at::Tensor& u) {
  using namespace importance;
  check_dim(depths_coarse, "depths_coarse", 4, "(N, R, D, 1)");
  check_size(depths_coarse, "depths_coarse", 3, 1, "(N, R, D, 1)");
  const int64_t N = depths_coarse.size(0), R = depths_coarse.size(1), D = depths_coarse.size(2);
  TORCH_CHECK(D >= 4, "depths_coarse must have shape (N, R, D, 1) with D >= 4 samples per ray, got ",
              depths_coarse.sizes());
  TORCH_CHECK(weights_coarse.dim() == 4 && weights_coarse.size(0) == N &&
                  weights_coarse.size(1) == R && weights_coarse.size(2) == D - 1 &&
                  weights_coarse.size(3) == 1,
              "weights_coarse must have shape (N, R, D-1, 1) = (", N, ", ", R, ", ", D - 1,
              ", 1), got ", weights_coarse.sizes());
  check_device(depths_coarse, "depths_coarse");
  check_same_device(depths_coarse, "depths_coarse", weights_coarse, "weights_coarse");
  check_same_device(depths_coarse, "depths_coarse", u, "u");
  check_depth_dtype(depths_coarse, "depths_coarse");
  check_same_dtype(depths_coarse, "depths_coarse", weights_coarse, "weights_coarse");
  check_same_dtype(depths_coarse, "depths_coarse", u, "u");
  const int64_t n = u.dim() > 0 ? u.size(-1) : 0;
  const bool shared = u.dim() == 1;
  TORCH_CHECK(shared || (u.dim() == 2 && u.size(0) == N * R) ||
                  (u.dim() == 3 && u.size(0) == N && u.size(1) == R),
              "u must have shape (n,), (N*R, n) = (", N * R, ", n) or (N, R, n) = (", N, ", ", R,
              ", n), got ", u.sizes());

  at::Tensor out = at::empty({N, R, n, 1}, depths_coarse.options());
  if (N * R == 0 || n == 0) return out;
  const at::Tensor depths_c = depths_coarse.contiguous();
  const at::Tensor weights_c = weights_coarse.contiguous();
  const at::Tensor u_c = u.contiguous();
  const int64_t u_row_stride = shared ? 0 : n;
  if (runs_cuda_kernels(depths_coarse)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
    sample_pdf_cuda(depths_c, weights_c, u_c, u_row_stride, out);
#endif
  } else {
    sample_pdf_cpu(depths_c, weights_c, u_c, u_row_stride, out);
  }
  return out;
}

std::tuple<at::Tensor, at::Tensor> merge_samples_index(const at::Tensor& depths_a,
                                                       const at::Tensor& depths_b) {
  using namespace importance;
  check_dim(depths_a, "depths_a", 4, "(N, R, Sa, 1)");
  check_size(depths_a, "depths_a", 3, 1, "(N, R, Sa, 1)");
  const int64_t N = depths_a.size(0), R = depths_a.size(1);
  TORCH_CHECK(depths_b.dim() == 4 && depths_b.size(0) == N && depths_b.size(1) == R &&
                  depths_b.size(3) == 1,
              "depths_b must have shape (N, R, Sb, 1) = (", N, ", ", R, ", Sb, 1), got ",
              depths_b.sizes());
  check_device(depths_a, "depths_a");
  check_same_device(depths_a, "depths_a", depths_b, "depths_b");
  check_depth_dtype(depths_a, "depths_a");
  check_same_dtype(depths_a, "depths_a", depths_b, "depths_b");
  const int64_t S = depths_a.size(2) + depths_b.size(2);
  at::Tensor depths = at::empty({N, R, S, 1}, depths_a.options());
  at::Tensor index = at::empty({N, R, S}, depths_a.options().dtype(at::kLong));
  if (N * R == 0 || S == 0) return {depths, index};
  const at::Tensor a = depths_a.contiguous();
  const at::Tensor b = depths_b.contiguous();
  if (runs_cuda_kernels(depths_a)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
    merge_index_cuda(a, b, depths, index);
#endif
  } else {
    merge_index_cpu(a, b, depths, index);
  }
  return {depths, index};
}

at::Tensor merge_gather_forward(const at::Tensor& index, const at::Tensor& values_a,
                                const at::Tensor& values_b) {
  using namespace importance;
  check_dim(values_a, "values_a", 4, "(N, R, Sa, C)");
  check_dim(values_b, "values_b", 4, "(N, R, Sb, C)");
  const int64_t Sa = values_a.size(2), Sb = values_b.size(2), C = values_a.size(3);
  check_index(index, values_a.size(0), values_a.size(1), Sa + Sb);
  check_device(index, "index");
  check_values(values_a, "values_a", index, Sa, "(N, R, Sa, C)");
  check_values(values_b, "values_b", index, Sb, "(N, R, Sb, C)");
  TORCH_CHECK(values_b.size(3) == C, "values_b must have the channel count of values_a (", C,
              "), got ", values_b.sizes());
  check_same_dtype(values_a, "values_a", values_b, "values_b");
  at::Tensor out =
      cpu::empty_output({index.size(0), index.size(1), Sa + Sb, C}, values_a.options());
  if (out.numel() == 0) return out;
  const at::Tensor index_c = index.contiguous();
  const at::Tensor a = values_a.contiguous();
  const at::Tensor b = values_b.contiguous();
  if (runs_cuda_kernels(index)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
    gather_forward_cuda(index_c, a, b, out);
#endif
  } else {
    gather_forward_cpu(index_c, a, b, out);
  }
  return out;
}

std::tuple<at::Tensor, at::Tensor> merge_gather_backward(const at::Tensor& grad_out,
                                                         const at::Tensor& index, int64_t Sa,
                                                         int64_t Sb, bool need_a, bool need_b) {
  using namespace importance;
  TORCH_CHECK(Sa >= 0 && Sb >= 0, "Sa and Sb must be >= 0, got ", Sa, " and ", Sb);
  check_dim(grad_out, "grad_out", 4, "(N, R, Sa + Sb, C)");
  check_index(index, grad_out.size(0), grad_out.size(1), Sa + Sb);
  check_device(index, "index");
  check_values(grad_out, "grad_out", index, Sa + Sb, "(N, R, Sa + Sb, C)");
  const int64_t N = grad_out.size(0), R = grad_out.size(1), C = grad_out.size(3);
  at::Tensor grad_a, grad_b;
  // Zero-initialized: a permutation writes every entry once, anything else leaves no garbage.
  if (need_a) grad_a = cpu::empty_output({N, R, Sa, C}, grad_out.options()).zero_();
  if (need_b) grad_b = cpu::empty_output({N, R, Sb, C}, grad_out.options()).zero_();
  const auto opts = grad_out.options();
  if (!(need_a || need_b) || grad_out.numel() == 0) {
    return {or_empty(grad_a, opts), or_empty(grad_b, opts)};
  }
  const at::Tensor grad_c = grad_out.contiguous();
  const at::Tensor index_c = index.contiguous();
  if (runs_cuda_kernels(index)) {
#ifdef NERFGAN_KERNELS_WITH_CUDA
    gather_backward_cuda(grad_c, index_c, Sa, Sb, grad_a, grad_b);
#endif
  } else {
    gather_backward_cpu(grad_c, index_c, Sa, Sb, grad_a, grad_b);
  }
  return {or_empty(grad_a, opts), or_empty(grad_b, opts)};
}

}  // namespace nerfgan_kernels
