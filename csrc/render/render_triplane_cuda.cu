// CUDA kernels of render_triplane (contract in nerfgan_kernels/ops/fused.py; the CPU kernel it
// reproduces is render_triplane_cpu_kernels.h). The per-sample math is shared with the CPU
// kernel: triplane_math.h (bilinear stencil), decoder_math.h (the OSG decoder's layers),
// composite_math.h (the march step and its backward) and render_triplane_math.h (the gather, the
// activations, dL/dw). This file holds the threads, the memory and the atomics.
//
// One kernel per pass, one ray per thread (grid-stride over the N * R rays), kThreads threads a
// block. A block first stages the decoder's weights in dynamic shared memory (w0t, b0, w1t, b1;
// the backward also w0, w1); what does not fit in 48 KiB (float64 with a large decoder) is read
// from global memory instead (SharedPlan), since the weights are read uniformly by the block's
// threads either way. The decoder's device code (staging, decode, a sample's backward) is
// decoder_cuda.cuh's, shared with decode_triplane.
//
// Forward (forward_kernel): a ray marches its intervals in order and decodes lazily, sample k + 1
// when interval k is marched, so a ray stops decoding once its transmittance falls below t_min;
// intervals whose alpha is below alpha_min are skipped. A thread keeps two decoded samples (the
// previous one and the next one: pre-activations Hd, outputs O), the running transmittance,
// weight sums and colour accumulator (F): no per-sample arrays. Sample k's colour enters the rgb
// with weight w_{k-1} + w_k as soon as interval k is marched. The features f (C) are gathered
// 8 channels at a time and multiplied into the first layer at once, so C is not bounded.
//
// Backward (backward_kernel), nothing stored by the forward but stats (N, R, 2 + S): the ray's
// sums and each sample's raw density, so the march replays without decoding and only the samples
// a kept interval touches are decoded again (with masking, samples in empty space are not), twice.
// Pass 1 sums total = sum_k G_k w_k, G_k = dL/dw_k (which needs g_rgb . colour of both samples
// of the interval). Pass 2 marches once more with two decoded samples at hand: after interval k it knows
// everything sample k receives (density gradient (dx_{k-1} + dx_k) / 2 from interval_backward with
// the suffix sum total - prefix_k, colour weight w_{k-1} + w_k), so it runs sample k's decoder
// backward at once and the sample is dropped. The feature gradient df (C) is again formed 8
// channels at a time (features re-gathered) and scattered with atomicAdd into grad_planes
// (Np, 3, H, W, C) at the 4 taps of each plane, weight = bilinear weight / 3. The decoder's
// gradients are summed per block in shared memory (shared atomics; each thread starts its row at
// its own column so that the lanes of a warp seldom hit one address at once), then added to the
// output with one global atomicAdd per element per block. When the accumulators do not fit in
// shared memory, the threads add into the outputs directly.
//
// Nothing of size rays x samples is allocated; the atomics make float sums order-dependent (the
// results are not bitwise deterministic, as any atomics-based backward).
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>

#include "../common/cuda_launch.h"
#include "composite_math.h"
#include "decoder_cuda.cuh"
#include "decoder_math.h"
#include "render_triplane.h"
#include "render_triplane_math.h"

namespace nerfgan_kernels {
namespace fused {
namespace {

using composite::Interval;
using namespace cuda;

// The problem as raw pointers and sizes (Problem's tensors: planes channels-last
// (Np, 3, H, W, C), w0 (Hd, C), w0t (C, Hd), b0 (Hd), w1 (O, Hd), w1t (Hd, O), b1 (O),
// origins / directions (Nr, R, 3), depths (Nd, R, S)).
template <typename T>
struct Args {
  const T *planes, *w0, *w0t, *b0, *w1, *w1t, *b1, *origins, *directions, *depths;
  int64_t Np, Nr, Nd, N, R, S, C, H, W, Hd, O;
  T scale, lo, hi, t_min, alpha_min;
  bool white_back;
};

template <typename T>
Args<T> args_of(const Problem& p) {
  return Args<T>{p.planes_cl.data_ptr<T>(), p.w0.data_ptr<T>(), p.w0t.data_ptr<T>(),
                 p.b0.data_ptr<T>(), p.w1.data_ptr<T>(), p.w1t.data_ptr<T>(), p.b1.data_ptr<T>(),
                 p.origins.data_ptr<T>(), p.directions.data_ptr<T>(), p.depths.data_ptr<T>(),
                 p.Np, p.Nr, p.Nd, p.N, p.R, p.S, p.C, p.H, p.W, p.Hd, p.O,
                 static_cast<T>(p.scale), static_cast<T>(p.lo), static_cast<T>(p.hi),
                 static_cast<T>(p.t_min), static_cast<T>(p.alpha_min), p.white_back};
}

// One ray's inputs: its plane set (3, H, W, C), origin, direction (3) and depths (S); the batch
// index of each is n, or 0 where that input has a batch of 1.
template <typename T>
struct RayInputs {
  const T *planes, *o, *d, *t;
};

template <typename T>
__device__ RayInputs<T> ray_inputs(const Args<T>& a, int64_t n, int64_t r) {
  RayInputs<T> ray;
  ray.planes = a.planes + (a.Np == 1 ? 0 : n) * 3 * a.H * a.W * a.C;
  ray.o = a.origins + ((a.Nr == 1 ? 0 : n) * a.R + r) * 3;
  ray.d = a.directions + ((a.Nr == 1 ? 0 : n) * a.R + r) * 3;
  ray.t = a.depths + ((a.Nd == 1 ? 0 : n) * a.R + r) * a.S;
  return ray;
}

// Decodes sample j of a ray into s; h (Hd) is scratch.
template <typename T>
__device__ void decode_sample(const Args<T>& a, const Decoder<T>& dec, const RayInputs<T>& ray,
                              int64_t j, Sample<T>& s, T* h) {
  T x[3];
  sample_point(ray.o, ray.d, ray.t[j], x);
  decode(a, dec, ray.planes, x, s, h);
}

// acc (F) += weight * colour of the sample with outputs out; nothing for a zero weight.
template <typename T>
__device__ void add_color(T* acc, const T* out, T weight, int64_t F) {
  if (weight == T(0)) return;
  for (int64_t c = 0; c < F; ++c) acc[c] += weight * color_of_output(out[1 + c]);
}

// rgb (N*R, F), depth (N*R), weights (N*R, S-1), weights_sum (N*R), stats (N*R, 2 + S) =
// [W, D, the raw density of each decoded sample (0 for the others)].
template <typename T>
__global__ void forward_kernel(Args<T> a, SharedPlan plan, T* __restrict__ rgb,
                               T* __restrict__ depth, T* __restrict__ weights,
                               T* __restrict__ weights_sum, T* __restrict__ stats) {
  NGK_DYNAMIC_SHARED(T, smem);
  const Decoder<T> dec = stage_decoder(a, plan, smem);
  __syncthreads();
  const int64_t S = a.S, F = a.O - 1;
  Sample<T> s[2];
  T h[kMaxHidden], acc[kMaxOutput];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < a.N * a.R;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const RayInputs<T> ray = ray_inputs(a, i / a.R, i % a.R);
    T* w = weights + i * (S - 1);
    T* stats_row = stats + i * (2 + S);
    T* sigma = stats_row + 2;
    for (int64_t c = 0; c < F; ++c) acc[c] = T(0);
    T trans = 1, W = 0, D = 0, w_prev = 0;
    int cur = 0;  // s[cur] is sample k
    int64_t k = 0;
    if (S >= 2) {
      decode_sample(a, dec, ray, 0, s[cur], h);
      sigma[0] = s[cur].out[0];
    }
    for (; k + 1 < S; ++k) {
      if (composite::terminated(trans, a.t_min)) break;  // later samples are never decoded
      Sample<T>& next = s[cur ^ 1];
      decode_sample(a, dec, ray, k + 1, next, h);
      sigma[k + 1] = next.out[0];
      const Interval<T> iv =
          composite::make_interval<T>(s[cur].out[0], next.out[0], ray.t[k], ray.t[k + 1]);
      T wk = 0;
      if (!composite::skipped(iv.alpha, a.alpha_min)) {
        wk = iv.alpha * trans;
        W += wk;
        D += wk * iv.t_mid;
        trans = composite::next_transmittance(trans, iv.alpha);
      }
      w[k] = wk;
      add_color(acc, s[cur].out, color_weight(w_prev, wk), F);  // sample k is complete
      w_prev = wk;
      cur ^= 1;
    }
    // k: the interval the march stopped at (S - 1 when it ran to the end); sample k is the last
    // decoded one (none when S = 1).
    for (int64_t rest = k; rest + 1 < S; ++rest) w[rest] = T(0);
    for (int64_t j = S >= 2 ? k + 1 : 0; j < S; ++j) {  // never decoded
      sigma[j] = T(NAN);
    }
    if (S >= 2) add_color(acc, s[cur].out, w_prev, F);
    write_ray_outputs(i, acc, F, W, D, a.white_back, a.lo, a.hi, rgb, depth, weights_sum,
                      stats_row);
  }
}

// Upstream gradients: rgb (N*R, F), depth (N*R), weights (N*R, S-1), weights_sum (N*R) and the
// forward's stats (N*R, 2 + S).
template <typename T>
struct Upstream {
  const T *rgb, *depth, *weights, *weights_sum, *stats;
};

// Backward of sample j of ray i (decoded in s): its density receives grad_sigma, its colour has
// weight `weight` in the rgb. Decoder gradients into g, feature gradients scattered into the
// ray's plane set of grad_planes (3, H, W, C).
template <typename T>
__device__ void ray_sample_backward(const Args<T>& a, const Decoder<T>& dec,
                                    const RayInputs<T>& ray, int64_t j, const Sample<T>& s,
                                    T grad_sigma, T weight, const T* g_rgb, const Grads<T>& g,
                                    T* grad_planes) {
  if (weight == T(0) && grad_sigma == T(0)) return;  // no gradient reaches the sample
  const int64_t F = a.O - 1;
  T dout[kMaxOutput + 1];
  dout[0] = grad_sigma;
  for (int64_t c = 0; c < F; ++c) {
    dout[1 + c] = g_rgb[c] * weight * color_grad_of_output(s.out[1 + c]);
  }
  T x[3];
  sample_point(ray.o, ray.d, ray.t[j], x);
  sample_backward(a, dec, ray.planes, x, s, dout, g, grad_planes);
}

// Backward of ray i: replays the march twice on the stored densities (see the top of the file).
template <typename T>
__device__ void backward_ray(const Args<T>& a, const Decoder<T>& dec, const Upstream<T>& up,
                             int64_t i, const Grads<T>& g, T* grad_planes_all, Sample<T>* s,
                             T* h) {
  const int64_t S = a.S, F = a.O - 1;
  if (S < 2) return;  // no interval: nothing is decoded, no gradient
  const int64_t n = i / a.R;
  const RayInputs<T> ray = ray_inputs(a, n, i % a.R);
  T* grad_planes = grad_planes_all + (a.Np == 1 ? 0 : n) * 3 * a.H * a.W * a.C;
  const T* g_rgb = up.rgb + i * F;
  const T* g_weights = up.weights + i * (S - 1);
  const T* stats_row = up.stats + i * (2 + S);
  const T* sigma = stats_row + 2;
  const WeightGradTerms<T> dl_dw =
      make_weight_grad_terms(g_rgb, F, a.white_back, up.depth[i], up.weights_sum[i],
                             stats_row[0], stats_row[1], a.lo, a.hi);
  auto interval = [&](int64_t k) {
    return composite::make_interval<T>(sigma[k], sigma[k + 1], ray.t[k], ray.t[k + 1]);
  };
  // Whether interval k is kept when the transmittance in front of it is trans.
  auto kept = [&](int64_t k, T trans) {
    return k + 1 < S && !composite::terminated(trans, a.t_min) &&
           !composite::skipped(interval(k).alpha, a.alpha_min);
  };
  // Pass 1: total = sum_k G_k w_k over the kept intervals; the samples of a kept interval are
  // decoded (only g_rgb . colour is kept, gdot_last of the last decoded sample).
  T total = 0;
  {
    T trans = 1, gdot_last = 0;
    int64_t last_decoded = -1;
    for (int64_t k = 0; k + 1 < S; ++k) {
      if (composite::terminated(trans, a.t_min)) break;
      const Interval<T> iv = interval(k);
      if (composite::skipped(iv.alpha, a.alpha_min)) continue;
      T gdot_k = gdot_last;
      if (last_decoded != k) {
        decode_sample(a, dec, ray, k, s[0], h);
        gdot_k = color_dot(g_rgb, s[0].out, F);
      }
      decode_sample(a, dec, ray, k + 1, s[0], h);
      gdot_last = color_dot(g_rgb, s[0].out, F);
      last_decoded = k + 1;
      total += dl_dw(gdot_k, gdot_last, iv.t_mid, g_weights[k]) * (iv.alpha * trans);
      trans = composite::next_transmittance(trans, iv.alpha);
    }
  }
  // Pass 2: the march's backward, each touched sample's decoder backward once its two intervals
  // are done. s[cur] holds sample k when have_cur; gs_prev = dx_{k-1} / 2 and w_prev = w_{k-1}:
  // what interval k - 1 gave sample k.
  int cur = 0;
  bool have_cur = kept(0, T(1));
  T gdot_prev = 0;
  if (have_cur) {
    decode_sample(a, dec, ray, 0, s[cur], h);
    gdot_prev = color_dot(g_rgb, s[cur].out, F);
  }
  T trans = 1, prefix = 0, w_prev = 0, gs_prev = 0;
  int64_t k = 0;
  for (; k + 1 < S; ++k) {
    if (composite::terminated(trans, a.t_min)) break;
    const Interval<T> iv = interval(k);
    const bool kept_k = !composite::skipped(iv.alpha, a.alpha_min);
    const T trans_after = kept_k ? composite::next_transmittance(trans, iv.alpha) : trans;
    const bool have_next = kept_k || kept(k + 1, trans_after);  // sample k + 1 is touched
    Sample<T>& next = s[cur ^ 1];
    T gdot = 0;
    if (have_next) {
      decode_sample(a, dec, ray, k + 1, next, h);
      gdot = color_dot(g_rgb, next.out, F);
    }
    T wk = 0, half_dx = 0;
    if (kept_k) {
      wk = iv.alpha * trans;
      const T G = dl_dw(gdot_prev, gdot, iv.t_mid, g_weights[k]);
      prefix += G * wk;
      half_dx = composite::interval_backward(iv, trans, G, total - prefix) / T(2);
    }
    trans = trans_after;
    if (have_cur) {
      ray_sample_backward(a, dec, ray, k, s[cur], gs_prev + half_dx, color_weight(w_prev, wk),
                          g_rgb, g, grad_planes);
    }
    gs_prev = half_dx;
    w_prev = wk;
    gdot_prev = gdot;
    have_cur = have_next;
    cur ^= 1;
  }
  // Sample k: the last one (S - 1, or the one where the march terminated).
  if (have_cur) ray_sample_backward(a, dec, ray, k, s[cur], gs_prev, w_prev, g_rgb, g, grad_planes);
}

// grad_planes (Np, 3, H, W, C) and out = the decoder's gradients (Grads' layouts), zeros on
// entry, accumulated.
template <typename T>
__global__ void backward_kernel(Args<T> a, SharedPlan plan, Upstream<T> up,
                                T* __restrict__ grad_planes, Grads<T> out) {
  NGK_DYNAMIC_SHARED(T, smem);
  const Decoder<T> dec = stage_decoder(a, plan, smem);
  int64_t sizes[4];
  grad_sizes(a.C, a.Hd, a.O, sizes);
  const Grads<T> g = block_grads(plan, smem, out, sizes);
  __syncthreads();
  Sample<T> s[2];
  T h[kMaxHidden];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < a.N * a.R;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    backward_ray(a, dec, up, i, g, grad_planes, s, h);
  }
  flush_block_grads(plan, g, out, sizes);
}

}  // namespace

void forward_cuda(const Problem& p, at::Tensor& rgb, at::Tensor& depth, at::Tensor& weights,
                  at::Tensor& weights_sum, at::Tensor& stats) {
  check_limits(p.Hd, p.O, "render_triplane");
  const DeviceGuard guard(p.planes_cl.device());
  const int64_t rays = p.N * p.R;
  if (rays == 0) return;
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES(p.planes_cl.scalar_type(), "render_triplane_forward_cuda", [&] {
    const SharedPlan plan = plan_shared(p.C, p.Hd, p.O, sizeof(scalar_t), /*backward=*/false);
    launch<forward_kernel<scalar_t>>(
        blocks_for(rays), kThreads, plan.elements * sizeof(scalar_t), stream,
        args_of<scalar_t>(p), plan, rgb.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>(),
        weights.data_ptr<scalar_t>(), weights_sum.data_ptr<scalar_t>(),
        stats.data_ptr<scalar_t>());
  });
}

void backward_cuda(const Problem& p, const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                   const at::Tensor& grad_weights, const at::Tensor& grad_weights_sum,
                   const at::Tensor& stats, at::Tensor& grad_planes_cl, at::Tensor& g_w0t,
                   at::Tensor& g_b0, at::Tensor& g_w1t, at::Tensor& g_b1) {
  check_limits(p.Hd, p.O, "render_triplane");
  const DeviceGuard guard(p.planes_cl.device());
  const int64_t rays = p.N * p.R;
  if (rays == 0) return;
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES(p.planes_cl.scalar_type(), "render_triplane_backward_cuda", [&] {
    const SharedPlan plan = plan_shared(p.C, p.Hd, p.O, sizeof(scalar_t), /*backward=*/true);
    const Upstream<scalar_t> up{grad_rgb.data_ptr<scalar_t>(), grad_depth.data_ptr<scalar_t>(),
                                grad_weights.data_ptr<scalar_t>(),
                                grad_weights_sum.data_ptr<scalar_t>(),
                                stats.data_ptr<scalar_t>()};
    const Grads<scalar_t> out{g_w0t.data_ptr<scalar_t>(), g_b0.data_ptr<scalar_t>(),
                              g_w1t.data_ptr<scalar_t>(), g_b1.data_ptr<scalar_t>()};
    launch<backward_kernel<scalar_t>>(blocks_for(rays), kThreads,
                                      plan.elements * sizeof(scalar_t), stream,
                                      args_of<scalar_t>(p), plan, up,
                                      grad_planes_cl.data_ptr<scalar_t>(), out);
  });
}

}  // namespace fused
}  // namespace nerfgan_kernels
