// CUDA kernels of sample_pdf and merge_samples. The per-ray math is in importance_math.h; this
// file holds indexing and launch configuration. No atomics: every output has one writer.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>

#include <algorithm>

#include "../common/cuda_launch.h"
#include "importance.h"

namespace nerfgan_kernels {
namespace importance {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t work) {
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, 65535 * 8)));
}

#define NGK_GRID_STRIDE_LOOP(i, total)                                                     \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (total); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// One thread per ray: the ray's CDF into cdf (rays, D - 2).
template <typename scalar_t>
__global__ void cdf_kernel(const scalar_t* __restrict__ weights, scalar_t* __restrict__ cdf,
                           int64_t rays, int64_t D) {
  NGK_GRID_STRIDE_LOOP(r, rays) { build_cdf(weights + r * (D - 1), D, cdf + r * (D - 2)); }
}

// One thread per fine sample (ray-major, sample fastest: coalesced u reads and output writes).
template <typename scalar_t>
__global__ void inverse_cdf_kernel(const scalar_t* __restrict__ cdf,
                                   const scalar_t* __restrict__ depths,
                                   const scalar_t* __restrict__ u, int64_t u_row_stride,
                                   scalar_t* __restrict__ out, int64_t rays, int64_t D, int64_t n) {
  NGK_GRID_STRIDE_LOOP(i, rays * n) {
    const int64_t r = i / n, s = i % n;
    out[i] = inverse_cdf(cdf + r * (D - 2), depths + r * D, D, u[r * u_row_stride + s]);
  }
}

// One thread per ray; the output rows double as the scratch of the sorted b list.
template <typename scalar_t>
__global__ void merge_index_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   scalar_t* __restrict__ depths, int64_t* __restrict__ index,
                                   int64_t rays, int64_t Sa, int64_t Sb) {
  const int64_t S = Sa + Sb;
  NGK_GRID_STRIDE_LOOP(r, rays) {
    merge_ray(a + r * Sa, Sa, b + r * Sb, Sb, depths + r * S, index + r * S);
  }
}

// One thread per (merged slot, channel), channel fastest.
template <typename scalar_t>
__global__ void gather_forward_kernel(const int64_t* __restrict__ index,
                                      const scalar_t* __restrict__ va,
                                      const scalar_t* __restrict__ vb, scalar_t* __restrict__ out,
                                      int64_t rays, int64_t Sa, int64_t Sb, int64_t C) {
  const int64_t S = Sa + Sb;
  NGK_GRID_STRIDE_LOOP(i, rays * S * C) {
    const int64_t c = i % C, slot = i / C, r = slot / S;
    bool from_b;
    int64_t row;
    if (decode_source(index[slot], Sa, Sb, from_b, row)) {
      out[i] = from_b ? vb[(r * Sb + row) * C + c] : va[(r * Sa + row) * C + c];
    } else {
      out[i] = static_cast<scalar_t>(0.0f);
    }
  }
}

// The transpose of the gather (a permutation per ray: one writer per entry). A null grad_a /
// grad_b is skipped.
template <typename scalar_t>
__global__ void gather_backward_kernel(const scalar_t* __restrict__ grad,
                                       const int64_t* __restrict__ index,
                                       scalar_t* __restrict__ grad_a,
                                       scalar_t* __restrict__ grad_b, int64_t rays, int64_t Sa,
                                       int64_t Sb, int64_t C) {
  const int64_t S = Sa + Sb;
  NGK_GRID_STRIDE_LOOP(i, rays * S * C) {
    const int64_t c = i % C, slot = i / C, r = slot / S;
    bool from_b;
    int64_t row;
    if (!decode_source(index[slot], Sa, Sb, from_b, row)) continue;
    if (from_b) {
      if (grad_b != nullptr) grad_b[(r * Sb + row) * C + c] = grad[i];
    } else if (grad_a != nullptr) {
      grad_a[(r * Sa + row) * C + c] = grad[i];
    }
  }
}

#undef NGK_GRID_STRIDE_LOOP

}  // namespace

void sample_pdf_cuda(const at::Tensor& depths, const at::Tensor& weights, const at::Tensor& u,
                     int64_t u_row_stride, at::Tensor& out) {
  const DeviceGuard guard(depths.device());
  const int64_t rays = depths.size(0) * depths.size(1), D = depths.size(2), n = out.size(2);
  at::Tensor cdf = at::empty({rays, D - 2}, depths.options());
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES(depths.scalar_type(), "sample_pdf_cuda", [&] {
    launch<cdf_kernel<scalar_t>>(blocks_for(rays), kThreads, 0, stream,
                                 weights.data_ptr<scalar_t>(), cdf.data_ptr<scalar_t>(), rays, D);
    launch<inverse_cdf_kernel<scalar_t>>(blocks_for(rays * n), kThreads, 0, stream,
                                         cdf.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(),
                                         u.data_ptr<scalar_t>(), u_row_stride,
                                         out.data_ptr<scalar_t>(), rays, D, n);
  });
}

void merge_index_cuda(const at::Tensor& depths_a, const at::Tensor& depths_b, at::Tensor& depths,
                      at::Tensor& index) {
  const DeviceGuard guard(depths_a.device());
  const int64_t rays = depths_a.size(0) * depths_a.size(1);
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES(depths_a.scalar_type(), "merge_samples_index_cuda", [&] {
    launch<merge_index_kernel<scalar_t>>(
        blocks_for(rays), kThreads, 0, stream, depths_a.data_ptr<scalar_t>(),
        depths_b.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(), index.data_ptr<int64_t>(),
        rays, depths_a.size(2), depths_b.size(2));
  });
}

void gather_forward_cuda(const at::Tensor& index, const at::Tensor& values_a,
                         const at::Tensor& values_b, at::Tensor& out) {
  const DeviceGuard guard(index.device());
  const int64_t rays = index.size(0) * index.size(1);
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, values_a.scalar_type(), "merge_gather_forward_cuda", [&] {
        launch<gather_forward_kernel<scalar_t>>(
            blocks_for(out.numel()), kThreads, 0, stream, index.data_ptr<int64_t>(),
            values_a.data_ptr<scalar_t>(), values_b.data_ptr<scalar_t>(),
            out.data_ptr<scalar_t>(), rays, values_a.size(2), values_b.size(2),
            values_a.size(3));
      });
}

void gather_backward_cuda(const at::Tensor& grad_out, const at::Tensor& index, int64_t Sa,
                          int64_t Sb, at::Tensor& grad_a, at::Tensor& grad_b) {
  const DeviceGuard guard(index.device());
  const int64_t rays = index.size(0) * index.size(1);
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_out.scalar_type(), "merge_gather_backward_cuda", [&] {
        launch<gather_backward_kernel<scalar_t>>(
            blocks_for(grad_out.numel()), kThreads, 0, stream, grad_out.data_ptr<scalar_t>(),
            index.data_ptr<int64_t>(), data_or_null<scalar_t>(grad_a),
            data_or_null<scalar_t>(grad_b), rays, Sa, Sb, grad_out.size(3));
      });
}

}  // namespace importance
}  // namespace nerfgan_kernels
