// Per-interval math of the ray marcher (EG3D's MipRayMarcher2, softplus clamp mode), shared by
// the CPU and CUDA composite kernels. See docs/eg3d.md section 7.
//
// For samples k and k+1 of a ray (k = 0 .. S-2):
//   delta = t[k+1] - t[k]
//   x     = (sigma[k] + sigma[k+1]) / 2 - 1,   sigma_bar = softplus(x)  (torch: linear above 20)
//   alpha = 1 - exp(-sigma_bar * delta),       T[k+1] = T[k] * (1 - alpha + 1e-10)
//   w     = alpha * T[k]
#pragma once

#include <cmath>

#include "../common/macros.h"
#include "../cpu/vmath.h"

namespace nerfgan_kernels {
namespace composite {

constexpr double kTransmittanceEps = 1e-10;  // EG3D's "1 - alpha + 1e-10"
constexpr double kSoftplusThreshold = 20.0;  // torch.nn.functional.softplus default

template <typename T>
struct Interval {
  T delta;     // t[k+1] - t[k]
  T x;         // pre-softplus density
  T sigma;     // softplus(x)
  T transmit;  // exp(-sigma * delta) = 1 - alpha
  T alpha;
  T t_mid;     // (t[k] + t[k+1]) / 2
};

// torch's softplus, log1p(exp(x)) (linear above its threshold), and its derivative, through
// cpu/vmath.h: for float its inlined polynomials (max(x, 0) + log1p(exp(-|x|)), the same
// function to float rounding, without two calls into libm per interval), for double std's.
template <typename T>
NGK_HOST_DEVICE T softplus(T x) {
  return x > T(kSoftplusThreshold) ? x : cpu::vsoftplus(x);
}

// d softplus(x) / dx
template <typename T>
NGK_HOST_DEVICE T softplus_grad(T x) {
  return x > T(kSoftplusThreshold) ? T(1) : cpu::vsigmoid(x);
}

template <typename T>
NGK_HOST_DEVICE Interval<T> make_interval(T sigma0, T sigma1, T t0, T t1) {
  Interval<T> iv;
  iv.delta = t1 - t0;
  iv.x = (sigma0 + sigma1) / T(2) - T(1);
  iv.sigma = softplus(iv.x);
  iv.transmit = cpu::vexp(-(iv.sigma * iv.delta));
  iv.alpha = T(1) - iv.transmit;
  iv.t_mid = (t0 + t1) / T(2);
  return iv;
}

// Density masking: an interval is marched only while the ray's transmittance is >= t_min
// (early termination) and only if its alpha is >= alpha_min (empty space). A skipped interval
// contributes nothing and leaves the transmittance unchanged. Thresholds of 0 skip nothing.
template <typename T>
NGK_HOST_DEVICE bool terminated(T transmittance, T t_min) {
  return transmittance < t_min;
}

template <typename T>
NGK_HOST_DEVICE bool skipped(T alpha, T alpha_min) {
  return alpha < alpha_min;
}

template <typename T>
NGK_HOST_DEVICE T next_transmittance(T transmittance, T alpha) {
  return transmittance * (T(1) - alpha + T(kTransmittanceEps));
}

// EG3D's depth: sum(w * t_mid) / sum(w), NaN -> +inf, then clamped to [lo, hi].
template <typename T>
NGK_HOST_DEVICE T final_depth(T weighted_depth, T weight_total, T lo, T hi) {
  T d = weighted_depth / weight_total;
  if (d != d) d = T(INFINITY);
  return d < lo ? lo : (d > hi ? hi : d);
}

// Whether the depth's gradient passes the normalization and the clamp (torch.clamp passes the
// gradient where lo <= d <= hi; NaN from 0 / 0 passes nothing).
template <typename T>
NGK_HOST_DEVICE bool depth_has_grad(T weighted_depth, T weight_total, T lo, T hi) {
  if (!(weight_total > T(0))) return false;
  const T d = weighted_depth / weight_total;
  return d >= lo && d <= hi;
}

// Backward of one kept interval. G = dL/dw of this interval, Q = sum of dL/dw_i * w_i over the
// kept intervals after it, T = transmittance before it. Returns dL/dx (x = pre-softplus density).
// dL/dalpha = T * G - Q / (1 - alpha + eps); dalpha/dsigma = delta * (1 - alpha). The product is
// formed so that the division never amplifies rounding: (1 - alpha) / (1 - alpha + eps) <= 1.
// interval_dsigma is the same gradient before the softplus (dL/dsigma_bar), for callers that
// have softplus_grad(x) at hand.
template <typename T>
NGK_HOST_DEVICE T interval_dsigma(const Interval<T>& iv, T transmittance, T G, T Q) {
  const T one_minus = iv.transmit;
  return iv.delta *
         (transmittance * one_minus * G - Q * (one_minus / (one_minus + T(kTransmittanceEps))));
}

template <typename T>
NGK_HOST_DEVICE T interval_backward(const Interval<T>& iv, T transmittance, T G, T Q) {
  return interval_dsigma(iv, transmittance, G, Q) * softplus_grad(iv.x);
}

}  // namespace composite
}  // namespace nerfgan_kernels

namespace nerfgan_kernels {
namespace composite {

// One ray, forward. Inputs: c (S, C), sigma (S) in the features' type, t (S) in acc_t. Outputs:
// rgb_out (C) = 2 * rgb - 1 (+ white background), depth_out, weights_out (S - 1) and stats (3) =
// [W, sum w * t_mid, kept] in acc_t. rgb_acc (C) is accumulation scratch; it may alias rgb_out
// when scalar_t == acc_t.
template <typename scalar_t, typename acc_t>
NGK_HOST_DEVICE void march_forward(const scalar_t* c, const scalar_t* sigma, const acc_t* t,
                                   int64_t S, int64_t C, acc_t lo, acc_t hi, bool white_back,
                                   acc_t t_min, acc_t alpha_min, acc_t* rgb_acc, scalar_t* rgb_out,
                                   acc_t* depth_out, acc_t* weights_out, acc_t* stats) {
  for (int64_t ch = 0; ch < C; ++ch) rgb_acc[ch] = acc_t(0);
  acc_t T = 1, W = 0, D = 0, kept = 0;
  for (int64_t k = 0; k + 1 < S; ++k) {
    weights_out[k] = acc_t(0);
    if (terminated(T, t_min)) continue;  // the remaining weights stay 0
    const Interval<acc_t> iv = make_interval<acc_t>(sigma[k], sigma[k + 1], t[k], t[k + 1]);
    if (skipped(iv.alpha, alpha_min)) continue;
    const acc_t w = iv.alpha * T;
    weights_out[k] = w;
    const scalar_t* c0 = c + k * C;
    const scalar_t* c1 = c0 + C;
    for (int64_t ch = 0; ch < C; ++ch) {
      rgb_acc[ch] += w * ((static_cast<acc_t>(c0[ch]) + static_cast<acc_t>(c1[ch])) / acc_t(2));
    }
    W += w;
    D += w * iv.t_mid;
    kept += 1;
    T = next_transmittance(T, iv.alpha);
  }
  for (int64_t ch = 0; ch < C; ++ch) {
    acc_t v = rgb_acc[ch];
    if (white_back) v = v + acc_t(1) - W;
    rgb_out[ch] = static_cast<scalar_t>(v * acc_t(2) - acc_t(1));
  }
  *depth_out = final_depth(D, W, lo, hi);
  stats[0] = W;
  stats[1] = D;
  stats[2] = kept;
}

// dL/dw of interval k (w = its weight): through rgb (2 * sum_c g_c * c_mid), the white
// background (-2 * sum_c g_c), the depth ((t_mid - depth) / W) and the weights output.
template <typename scalar_t, typename acc_t>
NGK_HOST_DEVICE acc_t weight_grad(const scalar_t* c0, const scalar_t* g_rgb, int64_t C,
                                  acc_t wb_term, acc_t g_depth_over_W, acc_t depth_u, acc_t t_mid,
                                  acc_t g_weight) {
  const scalar_t* c1 = c0 + C;
  acc_t dot = 0;
  for (int64_t ch = 0; ch < C; ++ch) {
    dot += static_cast<acc_t>(g_rgb[ch]) * (static_cast<acc_t>(c0[ch]) + static_cast<acc_t>(c1[ch]));
  }
  return dot + wb_term + g_depth_over_W * (t_mid - depth_u) + g_weight;
}

// One ray, backward, recomputing the march from the inputs (two sweeps: the first sums
// G_k * w_k over the kept intervals, the second forms each interval's gradient from its prefix).
// grad_c (S, C) and grad_sigma (S) must be zero on entry. stats = [W, D, kept] from the forward.
// g_depth, g_weights and t are in acc_t (the geometry's type), the rest in the features' type.
template <typename scalar_t, typename acc_t>
NGK_HOST_DEVICE void march_backward(const scalar_t* g_rgb, const acc_t* g_depth,
                                    const acc_t* g_weights, const scalar_t* c,
                                    const scalar_t* sigma, const acc_t* t, int64_t S, int64_t C,
                                    acc_t lo, acc_t hi, bool white_back, acc_t t_min,
                                    acc_t alpha_min, const acc_t* stats, scalar_t* grad_c,
                                    scalar_t* grad_sigma) {
  const acc_t W = stats[0], D = stats[1];
  acc_t wb_term = 0;
  if (white_back) {
    for (int64_t ch = 0; ch < C; ++ch) wb_term -= acc_t(2) * static_cast<acc_t>(g_rgb[ch]);
  }
  const bool depth_active = depth_has_grad(D, W, lo, hi);
  const acc_t depth_u = depth_active ? D / W : acc_t(0);
  const acc_t gdw = depth_active ? static_cast<acc_t>(*g_depth) / W : acc_t(0);

  acc_t total = 0;
  {
    acc_t T = 1;
    for (int64_t k = 0; k + 1 < S; ++k) {
      if (terminated(T, t_min)) break;
      const Interval<acc_t> iv = make_interval<acc_t>(sigma[k], sigma[k + 1], t[k], t[k + 1]);
      if (skipped(iv.alpha, alpha_min)) continue;
      const acc_t G = weight_grad(c + k * C, g_rgb, C, wb_term, gdw, depth_u, iv.t_mid,
                                  static_cast<acc_t>(g_weights[k]));
      total += G * iv.alpha * T;
      T = next_transmittance(T, iv.alpha);
    }
  }
  acc_t T = 1, prefix = 0;
  for (int64_t k = 0; k + 1 < S; ++k) {
    if (terminated(T, t_min)) break;
    const Interval<acc_t> iv = make_interval<acc_t>(sigma[k], sigma[k + 1], t[k], t[k + 1]);
    if (skipped(iv.alpha, alpha_min)) continue;
    const acc_t w = iv.alpha * T;
    const acc_t G = weight_grad(c + k * C, g_rgb, C, wb_term, gdw, depth_u, iv.t_mid,
                                static_cast<acc_t>(g_weights[k]));
    prefix += G * w;
    const acc_t dx = interval_backward(iv, T, G, total - prefix);
    grad_sigma[k] = static_cast<scalar_t>(static_cast<acc_t>(grad_sigma[k]) + dx / acc_t(2));
    grad_sigma[k + 1] = static_cast<scalar_t>(static_cast<acc_t>(grad_sigma[k + 1]) + dx / acc_t(2));
    scalar_t* gc0 = grad_c + k * C;
    scalar_t* gc1 = gc0 + C;
    for (int64_t ch = 0; ch < C; ++ch) {
      const acc_t gw = static_cast<acc_t>(g_rgb[ch]) * w;  // d(2 * w * c_mid)/dc_k = w
      gc0[ch] = static_cast<scalar_t>(static_cast<acc_t>(gc0[ch]) + gw);
      gc1[ch] = static_cast<scalar_t>(static_cast<acc_t>(gc1[ch]) + gw);
    }
    T = next_transmittance(T, iv.alpha);
  }
}

}  // namespace composite
}  // namespace nerfgan_kernels
