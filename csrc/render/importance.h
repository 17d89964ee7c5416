// sample_pdf and merge_samples: EG3D's importance sampling and the per-ray merge of the coarse
// and fine sample lists (docs/eg3d.md 4.2 and 4.3).
//
//   sample_pdf: depths_coarse (N, R, D, 1) sorted per ray, D >= 4; weights_coarse (N, R, D-1, 1);
//     u (n,) shared by every ray, (N*R, n) rows batch-major then ray, or (N, R, n)
//     -> depths_fine (N, R, n, 1), unsorted (EG3D's order). Forward only.
//   merge_samples_index: depths_a (N, R, Sa, 1) sorted, depths_b (N, R, Sb, 1) any order
//     -> {depths (N, R, Sa+Sb, 1) ascending, index (N, R, Sa+Sb) int64}: the source of each merged
//     slot, i < Sa for a[i] and Sa + j for b[j] (ties: a before b; b's ties in input order).
//   merge_gather_forward: index, values_a (N, R, Sa, C), values_b (N, R, Sb, C) -> (N, R, Sa+Sb, C).
//   merge_gather_backward: the scatter back to (N, R, Sa, C) and (N, R, Sb, C).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

#include "importance_math.h"

namespace nerfgan_kernels {

// Public entry points (argument checks and device dispatch).
at::Tensor sample_pdf_forward(const at::Tensor& depths_coarse, const at::Tensor& weights_coarse,
                              const at::Tensor& u);

// Returns (depths (N, R, Sa+Sb, 1), index (N, R, Sa+Sb) int64).
std::tuple<at::Tensor, at::Tensor> merge_samples_index(const at::Tensor& depths_a,
                                                       const at::Tensor& depths_b);

at::Tensor merge_gather_forward(const at::Tensor& index, const at::Tensor& values_a,
                                const at::Tensor& values_b);

// index must be a permutation of [0, Sa+Sb) per ray (as merge_samples_index makes it). Returns
// (grad_values_a (N, R, Sa, C), grad_values_b (N, R, Sb, C)); empty (0,) where need_* is false.
std::tuple<at::Tensor, at::Tensor> merge_gather_backward(const at::Tensor& grad_out,
                                                         const at::Tensor& index, int64_t Sa,
                                                         int64_t Sb, bool need_a, bool need_b);

namespace importance {

// The data of an optional output (undefined when its gradient is not needed), else nullptr.
template <typename T>
T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// Device kernels; every tensor contiguous, shapes checked by the entry points, outputs
// preallocated. u is (n,) when u_row_stride is 0, else (rays, n).
void sample_pdf_cpu(const at::Tensor& depths, const at::Tensor& weights, const at::Tensor& u,
                    int64_t u_row_stride, at::Tensor& out);
void merge_index_cpu(const at::Tensor& depths_a, const at::Tensor& depths_b, at::Tensor& depths,
                     at::Tensor& index);
void gather_forward_cpu(const at::Tensor& index, const at::Tensor& values_a,
                        const at::Tensor& values_b, at::Tensor& out);
// grad_a (N, R, Sa, C) / grad_b (N, R, Sb, C) zero-initialized, or undefined when not needed.
void gather_backward_cpu(const at::Tensor& grad_out, const at::Tensor& index, int64_t Sa,
                         int64_t Sb, at::Tensor& grad_a, at::Tensor& grad_b);

#ifdef NERFGAN_KERNELS_WITH_CUDA
void sample_pdf_cuda(const at::Tensor& depths, const at::Tensor& weights, const at::Tensor& u,
                     int64_t u_row_stride, at::Tensor& out);
void merge_index_cuda(const at::Tensor& depths_a, const at::Tensor& depths_b, at::Tensor& depths,
                      at::Tensor& index);
void gather_forward_cuda(const at::Tensor& index, const at::Tensor& values_a,
                         const at::Tensor& values_b, at::Tensor& out);
void gather_backward_cuda(const at::Tensor& grad_out, const at::Tensor& index, int64_t Sa,
                          int64_t Sb, at::Tensor& grad_a, at::Tensor& grad_b);
#endif

}  // namespace importance
}  // namespace nerfgan_kernels
