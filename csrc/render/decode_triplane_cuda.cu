// CUDA kernels of decode_triplane (contract in nerfgan_kernels/ops/fused.py; the CPU kernel it
// reproduces is decode_triplane_cpu_kernels.h). One point per thread (grid-stride over the N * M
// points), kThreads a block, the decoder's weights staged in shared memory and the point's
// gather + MLP + backward from decoder_cuda.cuh (the device code render_triplane's kernels run per
// sample).
//
// Forward: decode, write features and density. Backward: the point is decoded again, its
// outputs' gradient dout (O) formed from the upstream gradients, and sample_backward adds the
// decoder's gradients into the block's shared accumulators (one global atomic per element per
// block at the end) and scatters the feature gradient into grad_planes (Np, 3, H, W, C) with
// atomics. Points whose upstream gradient is zero are skipped. Nothing per point is allocated;
// the atomics make the float sums order-dependent.
#include <ATen/Dispatch.h>

#include "../common/cuda_launch.h"
#include "decode_triplane.h"
#include "decoder_cuda.cuh"
#include "render_triplane_math.h"

namespace nerfgan_kernels {
namespace fused {
namespace {

using namespace cuda;

// Points' tensors as raw pointers (planes channels-last (Np, 3, H, W, C), the decoder as in
// decoder_cuda.cuh, coords (Nc, M, 3)).
template <typename T>
struct PointArgs {
  const T *planes, *w0, *w0t, *b0, *w1, *w1t, *b1, *coords;
  int64_t Np, Nc, N, M, C, H, W, Hd, O;
  T scale;
};

template <typename T>
PointArgs<T> point_args_of(const Points& p) {
  return PointArgs<T>{p.planes_cl.data_ptr<T>(), p.w0.data_ptr<T>(), p.w0t.data_ptr<T>(),
                      p.b0.data_ptr<T>(), p.w1.data_ptr<T>(), p.w1t.data_ptr<T>(),
                      p.b1.data_ptr<T>(), p.coords.data_ptr<T>(), p.Np, p.Nc, p.N, p.M, p.C,
                      p.H, p.W, p.Hd, p.O, static_cast<T>(p.scale)};
}

// Point i of the N * M outputs: the offset of its plane set and its coordinates.
template <typename T>
__device__ int64_t plane_offset(const PointArgs<T>& a, int64_t i) {
  return (a.Np == 1 ? 0 : i / a.M) * 3 * a.H * a.W * a.C;
}

template <typename T>
__device__ const T* point_of(const PointArgs<T>& a, int64_t i) {
  return a.coords + ((a.Nc == 1 ? 0 : i / a.M) * a.M + i % a.M) * 3;
}

// features (N*M, F), density (N*M).
template <typename T>
__global__ void decode_forward_kernel(PointArgs<T> a, SharedPlan plan, T* __restrict__ features,
                                      T* __restrict__ density) {
  NGK_DYNAMIC_SHARED(T, smem);
  const Decoder<T> dec = stage_decoder(a, plan, smem);
  __syncthreads();
  const int64_t F = a.O - 1;
  Sample<T> s;
  T h[kMaxHidden];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < a.N * a.M;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    decode(a, dec, a.planes + plane_offset(a, i), point_of(a, i), s, h);
    density[i] = s.out[0];
    for (int64_t c = 0; c < F; ++c) features[i * F + c] = color_of_output(s.out[1 + c]);
  }
}

// grad_planes (Np, 3, H, W, C) and out = the decoder's gradients (decoder_cuda.cuh's Grads),
// zeros on entry, accumulated; g_features (N*M, F), g_density (N*M).
template <typename T>
__global__ void decode_backward_kernel(PointArgs<T> a, SharedPlan plan,
                                       const T* __restrict__ g_features,
                                       const T* __restrict__ g_density,
                                       T* __restrict__ grad_planes, Grads<T> out) {
  NGK_DYNAMIC_SHARED(T, smem);
  const Decoder<T> dec = stage_decoder(a, plan, smem);
  int64_t sizes[4];
  grad_sizes(a.C, a.Hd, a.O, sizes);
  const Grads<T> g = block_grads(plan, smem, out, sizes);
  __syncthreads();
  const int64_t F = a.O - 1;
  Sample<T> s;
  T h[kMaxHidden], dout[kMaxOutput + 1];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < a.N * a.M;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T* gf = g_features + i * F;
    bool any = g_density[i] != T(0);
    for (int64_t c = 0; c < F; ++c) any = any || gf[c] != T(0);
    if (!any) continue;
    const int64_t offset = plane_offset(a, i);
    const T* x = point_of(a, i);
    decode(a, dec, a.planes + offset, x, s, h);
    dout[0] = g_density[i];
    for (int64_t c = 0; c < F; ++c) dout[1 + c] = gf[c] * color_grad_of_output(s.out[1 + c]);
    sample_backward(a, dec, a.planes + offset, x, s, dout, g, grad_planes + offset);
  }
  flush_block_grads(plan, g, out, sizes);
}

}  // namespace

void decode_forward_cuda(const Points& p, at::Tensor& features, at::Tensor& density) {
  check_limits(p.Hd, p.O, "decode_triplane");
  const DeviceGuard guard(p.planes_cl.device());
  const int64_t points = p.N * p.M;
  if (points == 0) return;
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES(p.planes_cl.scalar_type(), "decode_triplane_forward_cuda", [&] {
    const SharedPlan plan = plan_shared(p.C, p.Hd, p.O, sizeof(scalar_t), /*backward=*/false);
    launch<decode_forward_kernel<scalar_t>>(
        blocks_for(points), kThreads, plan.elements * sizeof(scalar_t), stream,
        point_args_of<scalar_t>(p), plan, features.data_ptr<scalar_t>(),
        density.data_ptr<scalar_t>());
  });
}

void decode_backward_cuda(const Points& p, const at::Tensor& grad_features,
                          const at::Tensor& grad_density, at::Tensor& grad_planes_cl,
                          at::Tensor& g_w0t, at::Tensor& g_b0, at::Tensor& g_w1t,
                          at::Tensor& g_b1) {
  check_limits(p.Hd, p.O, "decode_triplane");
  const DeviceGuard guard(p.planes_cl.device());
  const int64_t points = p.N * p.M;
  if (points == 0) return;
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES(p.planes_cl.scalar_type(), "decode_triplane_backward_cuda", [&] {
    const SharedPlan plan = plan_shared(p.C, p.Hd, p.O, sizeof(scalar_t), /*backward=*/true);
    const Grads<scalar_t> out{g_w0t.data_ptr<scalar_t>(), g_b0.data_ptr<scalar_t>(),
                              g_w1t.data_ptr<scalar_t>(), g_b1.data_ptr<scalar_t>()};
    launch<decode_backward_kernel<scalar_t>>(
        blocks_for(points), kThreads, plan.elements * sizeof(scalar_t), stream,
        point_args_of<scalar_t>(p), plan, grad_features.data_ptr<scalar_t>(),
        grad_density.data_ptr<scalar_t>(), grad_planes_cl.data_ptr<scalar_t>(), out);
  });
}

}  // namespace fused
}  // namespace nerfgan_kernels
