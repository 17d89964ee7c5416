// The CPU kernels of composite, compiled once per instruction set (cpu/simd.h) by
// composite_cpu_{baseline,avx2,avx512}.cpp. One task per ray; the per-interval math is
// composite_math.h.
//
// Each ray first computes the transcendentals of all its intervals in one vectorised loop
// (Scratch::compute_intervals, cpu/vmath.h). Forward: a scalar sweep then finds the weights, then the colour is one pass over the samples,
// rgb = sum_j c_j * (w_{j-1} + w_j) / 2 (each colour row read once, channels in register blocks).
// Backward: one recomputing sweep stores each kept interval (weights, G = dL/dw), a second
// forms the density gradients from the prefix sums; the colour gradient of sample j is
// g_rgb * (w_{j-1} + w_j), written once (no zero fill, no read-modify-write).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

#include "../cpu/simd.h"
#include "../cpu/vmath.h"
#include "composite_cpu.h"
#include "composite_math.h"

NGK_CPU_BEGIN
namespace nerfgan_kernels {
namespace composite {
namespace NGK_CPU_NS {
namespace {

// out[0, C) = sum_j coef[j] * rows[j * C + (0, C)] over the rows with coef[j] != 0.
template <typename scalar_t, typename acc_t>
inline void weighted_rows(const scalar_t* rows, const acc_t* coef, int64_t S, int64_t C,
                          acc_t* out) {
  constexpr int64_t B = cpu::kBlock<acc_t>;
  for (int64_t c0 = 0; c0 < C; c0 += B) {
    const int64_t width = C - c0 < B ? C - c0 : B;
    acc_t acc[B] = {};
    for (int64_t j = 0; j < S; ++j) {
      const acc_t a = coef[j];
      if (a == acc_t(0)) continue;
      const scalar_t* row = rows + j * C + c0;
      if (width == B) {
        for (int64_t c = 0; c < B; ++c) acc[c] += a * static_cast<acc_t>(row[c]);
      } else {
        for (int64_t c = 0; c < width; ++c) acc[c] += a * static_cast<acc_t>(row[c]);
      }
    }
    for (int64_t c = 0; c < width; ++c) out[c0 + c] = acc[c];
  }
}

template <typename scalar_t, typename acc_t>
inline acc_t dot(const scalar_t* a, const scalar_t* b, int64_t C) {
  acc_t sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < C; ++c) sum += static_cast<acc_t>(a[c]) * static_cast<acc_t>(b[c]);
  return sum;
}

// The transcendentals of a ray's n = S - 1 intervals, vectorised across intervals (cpu/vmath.h):
// softplus(x) as max(x, 0) + log1p(exp(-|x|)) (x itself above torch's threshold 20), its
// derivative sigmoid(x) from the same exp, and the transmittance exp(-softplus(x) * delta).
// The sweeps then only read them (composite_math.h's make_interval is the same math, scalar).
template <typename acc_t>
struct Scratch {
  std::vector<acc_t> delta, x, sigma, transmit, grad_x;  // per interval
  std::vector<acc_t> w, coef, G, T, grad_sigma, rgb;
  std::vector<int64_t> kept;
  Scratch(int64_t S, int64_t C)
      : delta(S), x(S), sigma(S), transmit(S), grad_x(S), w(S), coef(S), G(S), T(S),
        grad_sigma(S), rgb(C), kept(S) {}

  template <typename scalar_t>
  void compute_intervals(const scalar_t* sig, const acc_t* t, int64_t n) {
    acc_t* __restrict dl = delta.data();
    acc_t* __restrict xs = x.data();
    acc_t* __restrict sp = sigma.data();
    acc_t* __restrict tr = transmit.data();
    acc_t* __restrict gx = grad_x.data();
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) {
      const acc_t xk =
          (static_cast<acc_t>(sig[k]) + static_cast<acc_t>(sig[k + 1])) / acc_t(2) - acc_t(1);
      const acc_t d = t[k + 1] - t[k];
      const acc_t e = cpu::vexp(xk > acc_t(0) ? -xk : xk);  // exp(-|x|)
      const bool linear = xk > acc_t(kSoftplusThreshold);
      const acc_t s = linear ? xk : (xk > acc_t(0) ? xk : acc_t(0)) + cpu::vlog1p(e);
      const acc_t sigmoid = (xk >= acc_t(0) ? acc_t(1) : e) / (acc_t(1) + e);
      dl[k] = d;
      xs[k] = xk;
      sp[k] = s;
      gx[k] = linear ? acc_t(1) : sigmoid;
      tr[k] = cpu::vexp(-(s * d));
    }
  }

  // Interval k of the ray last passed to compute_intervals.
  Interval<acc_t> interval(int64_t k, const acc_t* t) const {
    Interval<acc_t> iv;
    iv.delta = delta[k];
    iv.x = x[k];
    iv.sigma = sigma[k];
    iv.transmit = transmit[k];
    iv.alpha = acc_t(1) - transmit[k];
    iv.t_mid = (t[k] + t[k + 1]) / acc_t(2);
    return iv;
  }
};

template <typename scalar_t, typename acc_t>
void forward_kernel(const Inputs<scalar_t, acc_t>& in, const Forward<scalar_t, acc_t>& out) {
  const int64_t S = in.S, C = in.C;
  at::parallel_for(0, in.rays, 16, [&](int64_t begin, int64_t end) {
    Scratch<acc_t> sc(S, C);
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* c = in.colors + r * S * C;
      const acc_t* t = in.depths + r * S;
      acc_t* weights = out.weights + r * (S - 1);
      sc.compute_intervals(in.densities + r * S, t, S - 1);
      acc_t T = 1, W = 0, D = 0, kept = 0;
      for (int64_t k = 0; k + 1 < S; ++k) {
        weights[k] = acc_t(0);
        if (terminated(T, in.t_min)) continue;  // the remaining weights stay 0
        const Interval<acc_t> iv = sc.interval(k, t);
        if (skipped(iv.alpha, in.alpha_min)) continue;
        const acc_t w = iv.alpha * T;
        weights[k] = w;
        W += w;
        D += w * iv.t_mid;
        kept += 1;
        T = next_transmittance(T, iv.alpha);
      }
      // Sample j is the far end of interval j - 1 and the near end of interval j.
      for (int64_t j = 0; j < S; ++j) {
        const acc_t before = j > 0 ? weights[j - 1] : acc_t(0);
        const acc_t after = j + 1 < S ? weights[j] : acc_t(0);
        sc.coef[j] = (before + after) / acc_t(2);
      }
      weighted_rows(c, sc.coef.data(), S, C, sc.rgb.data());
      scalar_t* rgb = out.rgb + r * C;
      for (int64_t ch = 0; ch < C; ++ch) {
        acc_t v = sc.rgb[ch];
        if (in.white_back) v = v + acc_t(1) - W;
        rgb[ch] = static_cast<scalar_t>(v * acc_t(2) - acc_t(1));
      }
      out.depth[r] = final_depth(D, W, in.lo, in.hi);
      acc_t* stats = out.stats + r * 3;
      stats[0] = W;
      stats[1] = D;
      stats[2] = kept;
    }
  });
}

template <typename scalar_t, typename acc_t>
void backward_kernel(const Inputs<scalar_t, acc_t>& in, const Backward<scalar_t, acc_t>& bw) {
  const int64_t S = in.S, C = in.C;
  at::parallel_for(0, in.rays, 16, [&](int64_t begin, int64_t end) {
    Scratch<acc_t> sc(S, C);
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* c = in.colors + r * S * C;
      const acc_t* t = in.depths + r * S;
      const scalar_t* g_rgb = bw.grad_rgb + r * C;
      const acc_t* g_weights = bw.grad_weights + r * (S - 1);
      const acc_t W = bw.stats[r * 3], D = bw.stats[r * 3 + 1];
      acc_t wb_term = 0;
      if (in.white_back) {
        for (int64_t ch = 0; ch < C; ++ch) wb_term -= acc_t(2) * static_cast<acc_t>(g_rgb[ch]);
      }
      const bool depth_active = depth_has_grad(D, W, in.lo, in.hi);
      const acc_t depth_u = depth_active ? D / W : acc_t(0);
      const acc_t gdw = depth_active ? bw.grad_depth[r] / W : acc_t(0);
      sc.compute_intervals(in.densities + r * S, t, S - 1);

      // Sweep 1: the kept intervals, their weights and G = dL/dw (g . (c_k + c_k+1) + ...).
      for (int64_t j = 0; j < S; ++j) {
        sc.w[j] = acc_t(0);
        sc.grad_sigma[j] = acc_t(0);
      }
      int64_t dot_j = -1;  // g . c_j of the last sample asked for (the next interval's near end)
      acc_t dot_value = 0;
      auto gdot = [&](int64_t j) {
        if (j != dot_j) {
          dot_value = dot<scalar_t, acc_t>(g_rgb, c + j * C, C);
          dot_j = j;
        }
        return dot_value;
      };
      int64_t n = 0;
      acc_t T = 1, total = 0;
      for (int64_t k = 0; k + 1 < S; ++k) {
        if (terminated(T, in.t_min)) break;
        const Interval<acc_t> iv = sc.interval(k, t);
        if (skipped(iv.alpha, in.alpha_min)) continue;
        const acc_t w = iv.alpha * T;
        const acc_t near = gdot(k);
        const acc_t far = gdot(k + 1);
        const acc_t G = near + far + wb_term + gdw * (iv.t_mid - depth_u) + g_weights[k];
        sc.kept[n] = k;
        sc.T[n] = T;
        sc.G[n] = G;
        sc.w[k] = w;
        ++n;
        total += G * w;
        T = next_transmittance(T, iv.alpha);
      }
      // Sweep 2: density gradients from the suffix sums Q = total - prefix.
      acc_t prefix = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = sc.kept[i];
        prefix += sc.G[i] * sc.w[k];
        const acc_t dx = interval_dsigma(sc.interval(k, t), sc.T[i], sc.G[i], total - prefix) *
                         sc.grad_x[k];
        sc.grad_sigma[k] += dx / acc_t(2);
        sc.grad_sigma[k + 1] += dx / acc_t(2);
      }
      scalar_t* gs = bw.grad_densities + r * S;
      for (int64_t j = 0; j < S; ++j) gs[j] = static_cast<scalar_t>(sc.grad_sigma[j]);
      // Colour gradients: d(2 * sum_k w_k * (c_k + c_k+1) / 2) / dc_j = w_{j-1} + w_j.
      scalar_t* gc = bw.grad_colors + r * S * C;
      for (int64_t j = 0; j < S; ++j) {
        const acc_t a = (j > 0 ? sc.w[j - 1] : acc_t(0)) + sc.w[j];
        scalar_t* row = gc + j * C;
        for (int64_t ch = 0; ch < C; ++ch) {
          row[ch] = static_cast<scalar_t>(static_cast<acc_t>(g_rgb[ch]) * a);
        }
      }
    }
  });
}

}  // namespace

void forward(const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
             const at::Tensor& depth_range, Options opt, at::Tensor& rgb, at::Tensor& depth,
             at::Tensor& weights, at::Tensor& stats) {
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, colors.scalar_type(), "composite_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto in = make_inputs<scalar_t, acc_t>(colors, densities, depths, depth_range, opt);
    forward_kernel<scalar_t, acc_t>(in, {rgb.data_ptr<scalar_t>(), depth.data_ptr<acc_t>(),
                                         weights.data_ptr<acc_t>(), stats.data_ptr<acc_t>()});
  });
}

void backward(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
              const at::Tensor& grad_weights, const at::Tensor& colors,
              const at::Tensor& densities, const at::Tensor& depths,
              const at::Tensor& depth_range, const at::Tensor& stats, Options opt,
              at::Tensor& grad_colors, at::Tensor& grad_densities) {
  const auto type = colors.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, type, "composite_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto in = make_inputs<scalar_t, acc_t>(colors, densities, depths, depth_range, opt);
    backward_kernel<scalar_t, acc_t>(
        in, {grad_rgb.data_ptr<scalar_t>(), grad_depth.data_ptr<acc_t>(),
             grad_weights.data_ptr<acc_t>(), stats.data_ptr<acc_t>(),
             grad_colors.data_ptr<scalar_t>(), grad_densities.data_ptr<scalar_t>()});
  });
}

}  // namespace NGK_CPU_NS
}  // namespace composite
}  // namespace nerfgan_kernels
NGK_CPU_END
