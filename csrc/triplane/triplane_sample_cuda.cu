// CUDA kernels of triplane_sample. The math is in triplane_math.h; this file holds indexing,
// launch configuration and atomics. float16/bfloat16 planes are computed with float32
// accumulation; coords are always in the accumulation type (never rounded to half).
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <algorithm>

#include "../common/cuda_launch.h"
#include "triplane_sample.h"

namespace nerfgan_kernels {
namespace triplane {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t work) {
  return static_cast<int>(std::min<int64_t>((work + kThreads - 1) / kThreads, 65535 * 8));
}

// One thread per (n, m, c), c fastest: neighbouring threads read neighbouring channels of the
// same channels-last texel.
template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ planes,
                               const acc_t* __restrict__ coords, scalar_t* __restrict__ out,
                               Sizes s, acc_t scale, Reduce reduce) {
  const int64_t total = s.N * s.M * s.C;
  const int64_t plane_size = s.plane_size();
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = idx % s.C;
    const int64_t i = idx / s.C;
    const int64_t m = i % s.M;
    const int64_t n = i / s.M;
    const acc_t* p = coords + ((s.Nc == 1 ? 0 : n) * s.M + m) * 3;
    const acc_t x = p[0];
    const acc_t y = p[1];
    const acc_t z = p[2];
    const scalar_t* planes_n = planes + (s.Np == 1 ? 0 : n) * 3 * plane_size;
    acc_t total_val = 0;
    for (int k = 0; k < 3; ++k) {
      acc_t u, v;
      plane_uv(k, x, y, z, scale, u, v);
      const Stencil<acc_t> st = make_stencil(u, v, s.H, s.W);
      const scalar_t* base = planes_n + k * plane_size + c;
      acc_t val = 0;
      for (int t = 0; t < 4; ++t) {
        if (st.valid[t]) val += st.weight[t] * static_cast<acc_t>(base[st.offset[t] * s.C]);
      }
      if (reduce == Reduce::kNone) {
        out[((n * 3 + k) * s.M + m) * s.C + c] = static_cast<scalar_t>(val);
      } else {
        total_val += val;
      }
    }
    if (reduce == Reduce::kMean) total_val /= acc_t(3);
    if (reduce != Reduce::kNone) out[idx] = static_cast<scalar_t>(total_val);
  }
}

// One thread per (n, k, m): the planes' gradient is scattered with atomics into an acc_t buffer;
// the per-plane coordinate gradient (N, 3, M, 3) has one writer per entry.
template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const scalar_t* __restrict__ grad,
                                const scalar_t* __restrict__ planes,
                                const acc_t* __restrict__ coords,
                                acc_t* __restrict__ grad_planes, acc_t* __restrict__ grad_coords_pp,
                                Sizes s, acc_t scale, Reduce reduce) {
  const int64_t total = s.N * 3 * s.M;
  const int64_t plane_size = s.plane_size();
  const acc_t gscale = reduce == Reduce::kMean ? acc_t(1) / acc_t(3) : acc_t(1);
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t m = idx % s.M;
    const int64_t nk = idx / s.M;
    const int k = static_cast<int>(nk % 3);
    const int64_t n = nk / 3;
    const acc_t* p = coords + ((s.Nc == 1 ? 0 : n) * s.M + m) * 3;
    acc_t u, v;
    plane_uv(k, p[0], p[1], p[2], scale, u, v);
    const Stencil<acc_t> st = make_stencil(u, v, s.H, s.W);
    const int64_t slice = (s.Np == 1 ? 0 : n) * 3 + k;
    const scalar_t* base = planes + slice * plane_size;
    const scalar_t* go =
        grad + (reduce == Reduce::kNone ? (nk * s.M + m) * s.C : (n * s.M + m) * s.C);
    acc_t gu = 0, gv = 0;
    const bool any_valid = st.valid[0] || st.valid[1] || st.valid[2] || st.valid[3];
    if (any_valid) {
      for (int64_t c = 0; c < s.C; ++c) {
        const acc_t g = static_cast<acc_t>(go[c]) * gscale;
        if (grad_planes != nullptr) {
          acc_t* gp = grad_planes + slice * plane_size + c;
          for (int t = 0; t < 4; ++t) {
            if (st.valid[t]) gpuAtomicAdd(gp + st.offset[t] * s.C, st.weight[t] * g);
          }
        }
        if (grad_coords_pp != nullptr) {
          acc_t tap[4];
          for (int t = 0; t < 4; ++t) {
            tap[t] = st.valid[t] ? static_cast<acc_t>(base[st.offset[t] * s.C + c]) : acc_t(0);
          }
          stencil_backward_uv(st, tap, g, gu, gv);
        }
      }
    }
    if (grad_coords_pp != nullptr) {
      acc_t gx = 0, gy = 0, gz = 0;
      plane_uv_backward(k, gu, gv, scale, gx, gy, gz);
      acc_t* dst = grad_coords_pp + idx * 3;
      dst[0] = gx;
      dst[1] = gy;
      dst[2] = gz;
    }
  }
}

}  // namespace

at::Tensor forward_cuda(const at::Tensor& planes_cl, const at::Tensor& coords, double scale,
                        Reduce reduce) {
  const DeviceGuard guard(planes_cl.device());
  const Sizes s = sizes_of(planes_cl, coords);
  at::Tensor out = reduce == Reduce::kNone ? at::empty({s.N, 3, s.M, s.C}, planes_cl.options())
                                           : at::empty({s.N, s.M, s.C}, planes_cl.options());
  const int64_t work = s.N * s.M * s.C;
  if (work == 0) return out;
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, planes_cl.scalar_type(), "triplane_sample_forward_cuda", [&] {
        using acc_t = at::acc_type<scalar_t, true>;
        launch<forward_kernel<scalar_t, acc_t>>(
            blocks_for(work), kThreads, 0, stream, planes_cl.data_ptr<scalar_t>(),
            coords.data_ptr<acc_t>(), out.data_ptr<scalar_t>(), s, static_cast<acc_t>(scale),
            reduce);
      });
  return out;
}

std::vector<at::Tensor> backward_cuda(const at::Tensor& grad_out, const at::Tensor& planes_cl,
                                      const at::Tensor& coords, double scale, Reduce reduce,
                                      bool need_planes, bool need_coords) {
  const DeviceGuard guard(planes_cl.device());
  const Sizes s = sizes_of(planes_cl, coords);
  const auto acc_dtype = at::toAccumulateType(planes_cl.scalar_type(), /*is_cuda=*/true);
  at::Tensor grad_planes, grad_coords_pp;
  if (need_planes) grad_planes = at::zeros(planes_cl.sizes(), planes_cl.options().dtype(acc_dtype));
  if (need_coords) grad_coords_pp = at::zeros({s.N, 3, s.M, 3}, coords.options());
  const int64_t work = s.N * 3 * s.M;
  if (work > 0 && (need_planes || need_coords)) {
    const auto stream = current_stream();
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, planes_cl.scalar_type(), "triplane_sample_backward_cuda", [&] {
          using acc_t = at::acc_type<scalar_t, true>;
          launch<backward_kernel<scalar_t, acc_t>>(
              blocks_for(work), kThreads, 0, stream, grad_out.data_ptr<scalar_t>(),
              planes_cl.data_ptr<scalar_t>(), coords.data_ptr<acc_t>(),
              need_planes ? grad_planes.data_ptr<acc_t>() : nullptr,
              need_coords ? grad_coords_pp.data_ptr<acc_t>() : nullptr, s,
              static_cast<acc_t>(scale), reduce);
        });
  }
  at::Tensor grad_coords;
  if (need_coords) {
    grad_coords = grad_coords_pp.sum(1);  // (N, M, 3)
    if (s.Nc == 1 && s.N > 1) grad_coords = grad_coords.sum(0, /*keepdim=*/true);
  }
  if (need_planes) grad_planes = grad_planes.to(planes_cl.scalar_type());
  return {grad_planes, grad_coords};
}

}  // namespace triplane
}  // namespace nerfgan_kernels
