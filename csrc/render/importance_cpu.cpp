// CPU kernels of sample_pdf and merge_samples (parallel over rays with at::parallel_for). The
// per-ray math is in importance_math.h.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "importance.h"

namespace nerfgan_kernels {
namespace importance {
namespace {

// Rays per task: enough work per task to amortize the scheduling, for S samples of C values.
int64_t grain_for(int64_t per_ray) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, per_ray)); }

// One task per chunk of rays; one CDF buffer per task.
template <typename scalar_t>
void sample_pdf_kernel(const scalar_t* depths, const scalar_t* weights, const scalar_t* u,
                       int64_t u_row_stride, scalar_t* out, int64_t rays, int64_t D, int64_t n) {
  at::parallel_for(0, rays, grain_for(D + n), [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> cdf(D - 2);
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* z = depths + r * D;
      build_cdf(weights + r * (D - 1), D, cdf.data());
      const scalar_t* u_r = u + r * u_row_stride;
      scalar_t* o = out + r * n;
      for (int64_t s = 0; s < n; ++s) o[s] = inverse_cdf(cdf.data(), z, D, u_r[s]);
    }
  });
}

template <typename scalar_t>
void merge_index_kernel(const scalar_t* a, const scalar_t* b, scalar_t* depths, int64_t* index,
                        int64_t rays, int64_t Sa, int64_t Sb) {
  const int64_t S = Sa + Sb;
  at::parallel_for(0, rays, grain_for(S + Sb * Sb / 4), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      merge_ray(a + r * Sa, Sa, b + r * Sb, Sb, depths + r * S, index + r * S);
    }
  });
}

// One task per chunk of merged slots: copy the slot's C values from its source row.
template <typename scalar_t>
void gather_forward_kernel(const int64_t* index, const scalar_t* va, const scalar_t* vb,
                           scalar_t* out, int64_t rays, int64_t Sa, int64_t Sb, int64_t C) {
  const int64_t S = Sa + Sb;
  at::parallel_for(0, rays * S, grain_for(C), [&](int64_t begin, int64_t end) {
    for (int64_t slot = begin; slot < end; ++slot) {
      const int64_t r = slot / S;
      bool from_b;
      int64_t row;
      scalar_t* dst = out + slot * C;
      if (decode_source(index[slot], Sa, Sb, from_b, row)) {
        const scalar_t* src = from_b ? vb + (r * Sb + row) * C : va + (r * Sa + row) * C;
        std::copy(src, src + C, dst);
      } else {
        std::fill(dst, dst + C, scalar_t(0));
      }
    }
  });
}

// The transpose of the gather: each merged slot's gradient row goes back to its source row
// (a permutation per ray: one writer per row, no atomics). A null grad_a / grad_b is skipped.
template <typename scalar_t>
void gather_backward_kernel(const scalar_t* grad, const int64_t* index, scalar_t* grad_a,
                            scalar_t* grad_b, int64_t rays, int64_t Sa, int64_t Sb, int64_t C) {
  const int64_t S = Sa + Sb;
  at::parallel_for(0, rays * S, grain_for(C), [&](int64_t begin, int64_t end) {
    for (int64_t slot = begin; slot < end; ++slot) {
      const int64_t r = slot / S;
      bool from_b;
      int64_t row;
      if (!decode_source(index[slot], Sa, Sb, from_b, row)) continue;
      scalar_t* dst = from_b ? grad_b : grad_a;
      if (dst == nullptr) continue;
      dst += (r * (from_b ? Sb : Sa) + row) * C;
      const scalar_t* src = grad + slot * C;
      std::copy(src, src + C, dst);
    }
  });
}

}  // namespace

void sample_pdf_cpu(const at::Tensor& depths, const at::Tensor& weights, const at::Tensor& u,
                    int64_t u_row_stride, at::Tensor& out) {
  const int64_t rays = depths.size(0) * depths.size(1), D = depths.size(2), n = out.size(2);
  AT_DISPATCH_FLOATING_TYPES(depths.scalar_type(), "sample_pdf_cpu", [&] {
    sample_pdf_kernel<scalar_t>(depths.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
                                u.data_ptr<scalar_t>(), u_row_stride, out.data_ptr<scalar_t>(),
                                rays, D, n);
  });
}

void merge_index_cpu(const at::Tensor& depths_a, const at::Tensor& depths_b, at::Tensor& depths,
                     at::Tensor& index) {
  const int64_t rays = depths_a.size(0) * depths_a.size(1);
  AT_DISPATCH_FLOATING_TYPES(depths_a.scalar_type(), "merge_samples_index_cpu", [&] {
    merge_index_kernel<scalar_t>(depths_a.data_ptr<scalar_t>(), depths_b.data_ptr<scalar_t>(),
                                 depths.data_ptr<scalar_t>(), index.data_ptr<int64_t>(), rays,
                                 depths_a.size(2), depths_b.size(2));
  });
}

void gather_forward_cpu(const at::Tensor& index, const at::Tensor& values_a,
                        const at::Tensor& values_b, at::Tensor& out) {
  const int64_t rays = index.size(0) * index.size(1);
  const auto type = values_a.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, type, "merge_gather_forward_cpu", [&] {
    gather_forward_kernel<scalar_t>(index.data_ptr<int64_t>(), values_a.data_ptr<scalar_t>(),
                                    values_b.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), rays,
                                    values_a.size(2), values_b.size(2), values_a.size(3));
  });
}

void gather_backward_cpu(const at::Tensor& grad_out, const at::Tensor& index, int64_t Sa,
                         int64_t Sb, at::Tensor& grad_a, at::Tensor& grad_b) {
  const int64_t rays = index.size(0) * index.size(1);
  const auto type = grad_out.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, type, "merge_gather_backward_cpu", [&] {
    gather_backward_kernel<scalar_t>(grad_out.data_ptr<scalar_t>(), index.data_ptr<int64_t>(),
                                     data_or_null<scalar_t>(grad_a), data_or_null<scalar_t>(grad_b),
                                     rays, Sa, Sb, grad_out.size(3));
  });
}

}  // namespace importance
}  // namespace nerfgan_kernels
