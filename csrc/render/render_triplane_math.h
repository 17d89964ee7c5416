// Per-sample math of render_triplane that is not already in the shared headers, host/device so
// that the CPU and CUDA kernels can run the same code (contract in nerfgan_kernels/ops/fused.py):
//
//   x_j   = o + t_j d                                   (sample_point)
//   f (C) = mean over the three planes of the bilinear features at x_j   (gather_channels)
//   h     = softplus(W0 f + b0), torch's softplus (linear above 20)      (hidden_softplus)
//   c_i   = sigmoid(out[1 + i]) * (1 + 2e-3) - 1e-3                       (color_of_output)
//   dL/dw_k of a kept interval (WeightGradTerms), from gdot_j = g_rgb . c_j (color_dot)
//
// The stencil is triplane_math.h's, the decoder's layers decoder_math.h's and the march step
// composite_math.h's; this header only composes them. The softplus and the sigmoid are those of
// cpu/vmath.h, as in the CPU kernel (render_triplane_cpu_kernels.h): its float versions are
// branch-free polynomials that compile for the device as well.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../common/macros.h"
#include "../cpu/vmath.h"
#include "../triplane/triplane_math.h"
#include "composite_math.h"
#include "decoder_math.h"

namespace nerfgan_kernels {
namespace fused {

// torch's softplus (linear above its threshold) and its derivative.
template <typename T>
NGK_HOST_DEVICE T hidden_softplus(T x) {
  return x > T(composite::kSoftplusThreshold) ? x : cpu::vsoftplus(x);
}

template <typename T>
NGK_HOST_DEVICE T hidden_softplus_grad(T x) {
  return x > T(composite::kSoftplusThreshold) ? T(1) : cpu::vsigmoid(x);
}

// Colour of a raw decoder output o = out[1 + i], and d colour / d o.
template <typename T>
NGK_HOST_DEVICE T color_of_output(T o) {
  return decoder::color_of(cpu::vsigmoid(o));
}

template <typename T>
NGK_HOST_DEVICE T color_grad_of_output(T o) {
  return decoder::color_grad(cpu::vsigmoid(o));
}

// g_rgb (F) . colour (F) of one sample whose decoder outputs are out (1 + F).
template <typename T>
NGK_HOST_DEVICE T color_dot(const T* g_rgb, const T* out, int64_t F) {
  T dot = 0;
  for (int64_t c = 0; c < F; ++c) dot += g_rgb[c] * color_of_output(out[1 + c]);
  return dot;
}

// x (3) = o (3) + t d (3).
template <typename T>
NGK_HOST_DEVICE void sample_point(const T* o, const T* d, T t, T* x) {
  for (int a = 0; a < 3; ++a) x[a] = o[a] + t * d[a];
}

// The bilinear stencils of one point on the three planes (zero padding: taps outside a plane
// are invalid and read nothing).
template <typename T>
struct PlaneTaps {
  triplane::Stencil<T> st[3];
};

template <typename T>
NGK_HOST_DEVICE PlaneTaps<T> make_plane_taps(const T* x, T scale, int64_t H, int64_t W) {
  PlaneTaps<T> taps;
  for (int k = 0; k < 3; ++k) {
    T u, v;
    triplane::plane_uv(k, x[0], x[1], x[2], scale, u, v);
    taps.st[k] = triplane::make_stencil(u, v, H, W);
  }
  return taps;
}

#if defined(NGK_DECODER_VECTOR_BLOCKS)
// gather_channels for float and n = 16 V channels on the CPU: the sums in V vectors of 16 lanes
// held in registers (a loop through f in memory is a chain of load-add-stores), in the same order.
template <int V>
inline __attribute__((always_inline)) void gather_channels_f16(const PlaneTaps<float>& taps,
                                                               const float* planes, int64_t H,
                                                               int64_t W, int64_t C, int64_t c0,
                                                               float* f) {
  decoder::Float16 acc[V];
  for (int v = 0; v < V; ++v) acc[v] = decoder::Float16{};
  for (int k = 0; k < 3; ++k) {
    const triplane::Stencil<float>& st = taps.st[k];
    const float* base = planes + k * H * W * C + c0;
    for (int tap = 0; tap < 4; ++tap) {
      if (!st.valid[tap]) continue;
      const float wt = st.weight[tap] / 3.0f;
      const decoder::Float16* row =
          reinterpret_cast<const decoder::Float16*>(base + st.offset[tap] * C);
      for (int v = 0; v < V; ++v) acc[v] += wt * row[v];
    }
  }
  decoder::Float16* out = reinterpret_cast<decoder::Float16*>(f);
  for (int v = 0; v < V; ++v) out[v] = acc[v];
}
#endif

// f[i] (n) = channel c0 + i of the mean of the three planes' bilinear features, for one plane set
// planes (3, H, W, C) channels-last. The sum runs plane by plane, tap by tap (the CPU kernel's
// order), each tap weighted by its bilinear weight / 3.
template <typename T>
NGK_HOST_DEVICE void gather_channels(const PlaneTaps<T>& taps, const T* planes, int64_t H,
                                     int64_t W, int64_t C, int64_t c0, int64_t n, T* f) {
#if defined(NGK_DECODER_VECTOR_BLOCKS)
  if constexpr (std::is_same_v<T, float>) {
    switch (n) {
      case 16: return gather_channels_f16<1>(taps, planes, H, W, C, c0, f);
      case 32: return gather_channels_f16<2>(taps, planes, H, W, C, c0, f);
      case 48: return gather_channels_f16<3>(taps, planes, H, W, C, c0, f);
      case 64: return gather_channels_f16<4>(taps, planes, H, W, C, c0, f);
      default: break;
    }
  }
#endif
  for (int64_t i = 0; i < n; ++i) f[i] = T(0);
  for (int k = 0; k < 3; ++k) {
    const triplane::Stencil<T>& st = taps.st[k];
    const T* base = planes + k * H * W * C + c0;
    for (int tap = 0; tap < 4; ++tap) {
      if (!st.valid[tap]) continue;
      const T wt = st.weight[tap] / T(3);
      const T* row = base + st.offset[tap] * C;
      for (int64_t i = 0; i < n; ++i) f[i] += wt * row[i];
    }
  }
}

// The second layer in two parts: the raw density out[0] = b1[0] + w1[0, :] h (w1 (O, Hd)) here,
// and the colours out[1 + i] = b1[1 + i] + sum_k h[k] w1t[k, 1 + i] (w1t (Hd, O)) in
// decoder_colors_n below. The fused renderer computes the density first and the colours only for
// samples whose colour has a weight.
template <typename T>
NGK_HOST_DEVICE T decoder_density(const T* h, const T* w1, const T* b1, int64_t Hd) {
  return b1[0] + decoder::dot(w1, h, Hd);
}

// The decoder on count <= decoder::kMaxPoints points at once (their rows of f, pre, h, out,
// dout, dpre and df given as pointers; the weights transposed for the forward, w0t (C, Hd) and
// w1t (Hd, O), as they are for the backward, w0 (Hd, C) and w1 (O, Hd)): each weight row is read
// once for all of them (decoder::accumulate_points), and each point's result is the same sum in
// the same order as for one point alone.
//   decoder_hidden_n:         pre = W0 f + b0, h = softplus(pre)
//   decoder_colors_n:         out[1, O) = W1[1:] h + b1[1:]
//   decoder_backward_input_n: dpre = (W1^T dout) * softplus'(pre), df = W0^T dpre
template <typename T>
NGK_HOST_DEVICE void decoder_hidden_n(int count, const T* const* f, const T* w0t, const T* b0,
                                      int64_t C, int64_t Hd, T* const* pre, T* const* h) {
  for (int p = 0; p < count; ++p) {
    for (int64_t k = 0; k < Hd; ++k) pre[p][k] = b0[k];
  }
  decoder::accumulate_points_n(count, f, 1, w0t, Hd, C, Hd, pre);
  for (int p = 0; p < count; ++p) {
    NGK_SIMD
    for (int64_t k = 0; k < Hd; ++k) h[p][k] = hidden_softplus(pre[p][k]);
  }
}

// out[p][1, O) (the colours' raw outputs) from h[p] (Hd).
template <typename T>
NGK_HOST_DEVICE void decoder_colors_n(int count, const T* const* h, const T* w1t, const T* b1,
                                      int64_t Hd, int64_t O, T* const* out) {
  T* colors[decoder::kMaxPoints];
  for (int p = 0; p < count; ++p) {
    for (int64_t o = 1; o < O; ++o) out[p][o] = b1[o];
    colors[p] = out[p] + 1;
  }
  decoder::accumulate_points_n(count, h, 1, w1t + 1, O, Hd, O - 1, colors);
}

template <typename T>
NGK_HOST_DEVICE void decoder_backward_input_n(int count, const T* w0, const T* w1,
                                              const T* const* pre, const T* const* dout,
                                              int64_t C, int64_t Hd, int64_t O, T* const* dpre,
                                              T* const* df) {
  for (int p = 0; p < count; ++p) {
    for (int64_t k = 0; k < Hd; ++k) dpre[p][k] = T(0);
    for (int64_t c = 0; c < C; ++c) df[p][c] = T(0);
  }
  decoder::accumulate_points_n(count, dout, 1, w1, Hd, O, Hd, dpre);
  for (int p = 0; p < count; ++p) {
    NGK_SIMD
    for (int64_t k = 0; k < Hd; ++k) dpre[p][k] *= hidden_softplus_grad(pre[p][k]);
  }
  decoder::accumulate_points_n(count, dpre, 1, w0, C, Hd, C, df);
}

// The colour weight of sample j in sum_k w_k (c_k + c_{k+1}): w_{j-1} + w_j (0 outside).
template <typename T>
NGK_HOST_DEVICE T color_weight(T w_before, T w_after) {
  return w_before + w_after;
}

// dL/dw_k of a kept interval k of one ray: through rgb (sum_c g_c (c_k + c_{k+1}), as
// gdot_k + gdot_{k+1}), the white background (-2 sum_c g_c), the depth ((t_mid - depth) / W when
// its gradient passes the clamp), the weights output and weights_sum.
template <typename T>
struct WeightGradTerms {
  T wb_term, depth_u, gdw, g_ws;

  NGK_HOST_DEVICE T operator()(T gdot0, T gdot1, T t_mid, T g_weight) const {
    return gdot0 + gdot1 + wb_term + gdw * (t_mid - depth_u) + g_weight + g_ws;
  }
};

// The ray's terms from its upstream gradients g_rgb (F), g_depth, g_ws and the forward's
// stats W = sum w, D = sum w t_mid.
template <typename T>
NGK_HOST_DEVICE WeightGradTerms<T> make_weight_grad_terms(const T* g_rgb, int64_t F,
                                                         bool white_back, T g_depth, T g_ws, T W,
                                                         T D, T lo, T hi) {
  WeightGradTerms<T> terms;
  terms.wb_term = 0;
  if (white_back) {
    for (int64_t c = 0; c < F; ++c) terms.wb_term -= T(2) * g_rgb[c];
  }
  const bool depth_active = composite::depth_has_grad(D, W, lo, hi);
  terms.depth_u = depth_active ? D / W : T(0);
  terms.gdw = depth_active ? g_depth / W : T(0);
  terms.g_ws = g_ws;
  return terms;
}

// Writes ray i's outputs from its march: acc (F) = sum_k w_k (c_k + c_{k+1}), W = sum w,
// D = sum w t_mid. rgb (N*R, F) in EG3D's [-1, 1] (white background adds 2 (1 - W)), depth
// (N*R) clamped to [lo, hi], weights_sum (N*R), and the first two entries of the ray's stats row
// (stats_row[0, 2) = [W, D], for the backward).
template <typename T>
NGK_HOST_DEVICE void write_ray_outputs(int64_t i, const T* acc, int64_t F, T W, T D,
                                       bool white_back, T lo, T hi, T* rgb, T* depth,
                                       T* weights_sum, T* stats_row) {
  for (int64_t c = 0; c < F; ++c) {
    T value = acc[c];  // = 2 * sum_k w_k * (c_k + c_k+1) / 2
    if (white_back) value += T(2) * (T(1) - W);
    rgb[i * F + c] = value - T(1);
  }
  depth[i] = composite::final_depth(D, W, lo, hi);
  weights_sum[i] = W;
  stats_row[0] = W;
  stats_row[1] = D;
}

}  // namespace fused
}  // namespace nerfgan_kernels
