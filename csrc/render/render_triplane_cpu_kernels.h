// The CPU kernels of render_triplane, compiled once per instruction set (cpu/simd.h) by
// render_triplane_cpu_{baseline,avx2,avx512}.cpp; render_triplane_cpu.cpp picks one. One task per ray; the per-sample math is shared with the other
// kernels: triplane_math.h (the bilinear stencil), decoder_math.h (the OSG decoder) and
// composite_math.h (the march step and its backward).
//
// Rays are visited in the Morton order of their midpoints (ray_order.h), for cache locality.
// Forward: a ray's samples are decoded lazily, in groups of kGroup samples whose density is not
// known when the march reaches them (the decoder's weight rows read once per group), so a ray
// whose transmittance has fallen below t_min gathers and decodes nothing more. Only the ray's
// densities and decoder outputs live in per-task scratch (S x (C + 2 hidden + O) values).
// Backward: the march is replayed on the densities the forward kept in stats (O(rays x S)), without
// decoding; only the samples a kept interval touches are decoded again (with masking, samples in
// empty space are not), the march is differentiated as in composite's backward, then each
// decoded sample's decoder backward gives the feature gradient df (C). The planes' gradient is a
// scatter of df: straight into a per-thread copy of the planes' gradient while (threads - 1)
// copies fit in kDirectScatterBytes (2 threads at EG3D size: one 25 MB copy), else per chunk of
// rays through the deterministic banded scatter of triplane_sample's backward
// (accumulate_planes_grad_cpu), so that only a chunk's (rays x S x C) gradients exist at a time.
// Both kernels run with denormals flushed to zero (cpu::FlushDenormals). The decoder's gradients
// are summed per block of rays and the blocks added in order: they do not depend on the thread
// count (the planes' gradient does, by rounding).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../cpu/simd.h"
#include "../cpu/vmath.h"
#include "../triplane/triplane_math.h"
#include "../triplane/triplane_sample.h"
#include "composite_math.h"
#include "decoder_cpu.h"
#include "decoder_math.h"
#include "ray_order.h"
#include "render_triplane.h"
#include "render_triplane_math.h"

NGK_CPU_BEGIN
namespace nerfgan_kernels {
namespace fused {
namespace NGK_CPU_NS {
namespace {

using composite::Interval;

// Rays (all batches) per scatter chunk: its buffers are 12.6 MB at EG3D size.
constexpr int64_t kChunkRays = 1024;
constexpr int64_t kBlockRays = 8;     // rays per decoder-gradient slot
constexpr int kGroup = decoder::kMaxPoints;  // samples that go through the decoder together

template <typename T>
struct View {
  const T *planes, *w0, *w0t, *b0, *w1, *w1t, *b1, *origins, *directions, *depths;
  const T* known;  // (Nk, R, S) known densities, or nullptr
  int64_t Np, Nr, Nd, Nk, N, R, S, C, H, W, Hd, O;
  T scale, lo, hi, t_min, alpha_min;
  bool white_back;

  explicit View(const Problem& p)
      : planes(p.planes_cl.data_ptr<T>()), w0(p.w0.data_ptr<T>()), w0t(p.w0t.data_ptr<T>()),
        b0(p.b0.data_ptr<T>()), w1(p.w1.data_ptr<T>()), w1t(p.w1t.data_ptr<T>()),
        b1(p.b1.data_ptr<T>()), origins(p.origins.data_ptr<T>()),
        directions(p.directions.data_ptr<T>()), depths(p.depths.data_ptr<T>()),
        known(p.Nk > 0 ? p.known.data_ptr<T>() : nullptr), Np(p.Np), Nr(p.Nr), Nd(p.Nd),
        Nk(p.Nk), N(p.N), R(p.R), S(p.S), C(p.C), H(p.H), W(p.W), Hd(p.Hd), O(p.O),
        scale(static_cast<T>(p.scale)), lo(static_cast<T>(p.lo)), hi(static_cast<T>(p.hi)),
        t_min(static_cast<T>(p.t_min)), alpha_min(static_cast<T>(p.alpha_min)),
        white_back(p.white_back) {}
};

// One ray's scratch: per decoded sample (a row) the point x (3), features f (C),
// pre-activations pre (Hd), hidden h (Hd), outputs out (O); per interval the weight. The forward
// decodes sample j into row j; the backward packs the samples it decodes (row_of, samples).
template <typename T>
struct Ray {
  const View<T>& v;
  const T *planes, *o, *d, *t;
  const T* known;  // the ray's known densities (S), or nullptr
  std::vector<T> x, f, pre, h, out, w;
  std::vector<int64_t> row_of, samples;
  std::vector<char> has_hidden;  // per row: decoded (x, f, pre, h and the density)
  std::vector<char> has_colors;  // per row: out[1, O) computed
  std::vector<PlaneTaps<T>> taps;  // per sample: its stencils, once prefetched or gathered
  std::vector<char> has_taps;
  int64_t decoded = 0;

  explicit Ray(const View<T>& view)
      : v(view), x(view.S * 3), f(view.S * view.C), pre(view.S * view.Hd), h(view.S * view.Hd),
        out(view.S * view.O), w(std::max<int64_t>(view.S, 1)), row_of(view.S),
        samples(view.S), has_hidden(view.S), has_colors(view.S), taps(view.S),
        has_taps(view.S) {}

  void start(int64_t n, int64_t r) {
    planes = v.planes + (v.Np == 1 ? 0 : n) * 3 * v.H * v.W * v.C;
    o = v.origins + ((v.Nr == 1 ? 0 : n) * v.R + r) * 3;
    d = v.directions + ((v.Nr == 1 ? 0 : n) * v.R + r) * 3;
    t = v.depths + ((v.Nd == 1 ? 0 : n) * v.R + r) * v.S;
    known = v.known == nullptr ? nullptr : v.known + ((v.Nk == 1 ? 0 : n) * v.R + r) * v.S;
    decoded = 0;
    std::fill(has_taps.begin(), has_taps.end(), 0);
  }

  T sigma(int64_t j) const { return out[j * v.O]; }

  bool is_known(int64_t j) const { return known != nullptr && !std::isnan(known[j]); }

  // The densities of the samples up to j (sample j in row j): known ones taken as they are,
  // the others decoded in groups of up to kGroup (the next unknown samples, known ones between
  // them skipped, so a group may decode up to kGroup - 1 unknown samples past j), the next
  // group's taps prefetched while a group's MLP runs.
  void need(int64_t j) {
    while (decoded <= j) {
      int64_t group[kGroup], next[kGroup];
      int count = 0, n_next = 0;
      int64_t k = decoded;
      for (; k < v.S && count < kGroup; ++k) {
        if (is_known(k)) {
          out[k * v.O] = known[k];
          has_hidden[k] = has_colors[k] = 0;
        } else {
          group[count++] = k;
        }
        if (count == 0 && k >= j) {  // only known samples up to j
          decoded = k + 1;
          return;
        }
      }
      for (int64_t m = k; n_next < kGroup && m < v.S; ++m) {
        if (!is_known(m)) next[n_next++] = m;
      }
      decode_group(group, group, count, next, n_next);
      decoded = k;
    }
  }

  // Decodes the hidden layers of the samples js (count of them) that are not decoded yet, in
  // groups of kGroup into their own rows (the forward's known densities whose colour is needed),
  // the next group's taps prefetched meanwhile.
  void decode_rows(const int64_t* js, int64_t count) {
    for (int64_t g = 0; g < count; g += kGroup) {
      const int n = static_cast<int>(std::min<int64_t>(kGroup, count - g));
      const int n_next = static_cast<int>(std::min<int64_t>(kGroup, count - g - n));
      decode_group(js + g, js + g, n, js + g + n, n_next);
    }
  }

  // Starts loading the taps of sample j.
  void prefetch(int64_t j) {
    T p[3];
    sample_point(o, d, t[j], p);
    taps[j] = make_plane_taps(p, v.scale, v.H, v.W);
    has_taps[j] = 1;
    prefetch_taps(planes, taps[j], v.H, v.W, v.C);
  }

  // Gathers the count <= kGroup samples js and decodes their densities into rows rows[0, count)
  // of the scratch arrays (the colours wait for colors_group: most samples of a render get no
  // colour weight); the taps of the samples `next` are prefetched meanwhile.
  void decode_group(const int64_t* js, const int64_t* rows, int count, const int64_t* next,
                    int n_next) {
    const int64_t C = v.C, Hd = v.Hd;
    const T* fp[kGroup];
    T *pp[kGroup], *hp[kGroup];
    for (int q = 0; q < count; ++q) {
      const int64_t row = rows[q], j = js[q];
      T* xr = x.data() + row * 3;
      sample_point(o, d, t[j], xr);
      T* fr = f.data() + row * C;
      if (!has_taps[j]) {
        taps[j] = make_plane_taps(xr, v.scale, v.H, v.W);
        has_taps[j] = 1;
      }
      gather_channels(taps[j], planes, v.H, v.W, C, 0, C, fr);
      fp[q] = fr;
      pp[q] = pre.data() + row * Hd;
      hp[q] = h.data() + row * Hd;
    }
    for (int q = 0; q < n_next; ++q) prefetch(next[q]);
    decoder_hidden_n(count, fp, v.w0t, v.b0, C, Hd, pp, hp);
    for (int q = 0; q < count; ++q) {
      out[rows[q] * v.O] = decoder_density(hp[q], v.w1, v.b1, Hd);
      has_hidden[rows[q]] = 1;
      has_colors[rows[q]] = 0;
    }
  }

  // The colour outputs out[1, O) of count <= kGroup decoded rows (has_hidden).
  void colors_group(const int64_t* rows, int count) {
    const T* hp[kGroup];
    T* op[kGroup];
    int n = 0;
    for (int q = 0; q < count; ++q) {
      if (has_colors[rows[q]]) continue;
      hp[n] = h.data() + rows[q] * v.Hd;
      op[n++] = out.data() + rows[q] * v.O;
      has_colors[rows[q]] = 1;
    }
    decoder_colors_n(n, hp, v.w1t, v.b1, v.Hd, v.O, op);
  }

  Interval<T> interval(int64_t k) const {
    return composite::make_interval<T>(sigma(k), sigma(k + 1), t[k], t[k + 1]);
  }

  // The march (decoding lazily): fills w (S - 1) and returns [W, sum w * t_mid].
  std::pair<T, T> march() {
    const int64_t S = v.S;
    for (int64_t k = 0; k + 1 < S; ++k) w[k] = T(0);
    T trans = 1, W = 0, D = 0;
    for (int64_t k = 0; k + 1 < S; ++k) {
      if (composite::terminated(trans, v.t_min)) break;  // later samples are never decoded
      need(k + 1);
      const Interval<T> iv = interval(k);
      if (composite::skipped(iv.alpha, v.alpha_min)) continue;
      const T wk = iv.alpha * trans;
      w[k] = wk;
      W += wk;
      D += wk * iv.t_mid;
      trans = composite::next_transmittance(trans, iv.alpha);
    }
    return {W, D};
  }

  // w_{j-1} + w_j: the weight of sample j's colour in sum_k w_k (c_k + c_k+1).
  T color_weight(int64_t j) const {
    return (j > 0 ? w[j - 1] : T(0)) + (j + 1 < v.S ? w[j] : T(0));
  }
};

// The rays' visiting order (ray_order.h), from the first batch's rays and depths.
template <typename T>
std::vector<int64_t> ray_order(const View<T>& v) {
  return morton_ray_order(v.origins, v.directions, v.depths, v.R, v.S);
}

template <typename T>
void forward_kernel(const View<T>& v, T* rgb, T* depth, T* weights, T* weights_sum, T* stats) {
  const int64_t F = v.O - 1;
  const std::vector<int64_t> order = ray_order(v);
  at::parallel_for(0, v.N * v.R, 8, [&](int64_t begin, int64_t end) {
    const cpu::FlushDenormals no_denormals;
    Ray<T> ray(v);
    std::vector<T> acc(F);
    std::vector<int64_t> missing(v.S);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / v.R, r = order[task % v.R], i = n * v.R + r;
      ray.start(n, r);
      const auto [W, D] = ray.march();
      for (int64_t k = 0; k + 1 < v.S; ++k) weights[i * (v.S - 1) + k] = ray.w[k];
      T* stats_row = stats + i * (2 + v.S);
      for (int64_t j = 0; j < v.S; ++j) {
        stats_row[2 + j] = j < ray.decoded ? ray.sigma(j) : std::numeric_limits<T>::quiet_NaN();
      }
      // The colours of the samples with a colour weight, kGroup at a time, summed in order.
      std::fill(acc.begin(), acc.end(), T(0));
      int64_t group[kGroup];
      int count = 0;
      auto add_group = [&] {
        ray.colors_group(group, count);
        for (int q = 0; q < count; ++q) {
          const T a = ray.color_weight(group[q]);
          const T* oj = ray.out.data() + group[q] * v.O + 1;
          for (int64_t c = 0; c < F; ++c) acc[c] += a * color_of_output(oj[c]);
        }
        count = 0;
      };
      // Known densities whose colour is needed: their hidden layers first, kGroup at a time.
      int64_t n_missing = 0;
      for (int64_t j = 0; j < ray.decoded; ++j) {
        if (ray.color_weight(j) != T(0) && !ray.has_hidden[j]) missing[n_missing++] = j;
      }
      ray.decode_rows(missing.data(), n_missing);
      for (int64_t j = 0; j < ray.decoded; ++j) {
        if (ray.color_weight(j) == T(0)) continue;
        group[count++] = j;
        if (count == kGroup) add_group();
      }
      add_group();
      write_ray_outputs(i, acc.data(), F, W, D, v.white_back, v.lo, v.hi, rgb, depth,
                        weights_sum, stats_row);
    }
  });
}

// Decoder gradients of one block of rays (transposed layouts, as View's weights).
template <typename T>
struct DecoderGrads {
  T *w0t, *b0, *w1t, *b1;
};

template <typename T>
struct Upstream {
  const T *rgb, *depth, *weights, *weights_sum, *stats;
};

// Backward of ray i = (n, r): decoder gradients into g, and the features' gradients either
// scattered at once into grad_planes (Np, 3, H, W, C), the calling thread's own copy, or (with
// grad_planes null) written for the banded scatter: for every sample j its point and feature
// gradient into points (S, 3) / grads (S, C) (NaN points for samples no gradient reaches, so the
// scatter skips them).
//
// The march is replayed on the forward's densities (stats), without decoding: it gives the kept
// intervals (before termination, alpha not below alpha_min), their weights and transmittances.
// Only the samples that a kept interval touches receive a gradient, so only they are decoded
// again, into packed scratch rows; a masked render of a head that fills a fraction of the view
// recomputes a fraction of its samples.
template <typename T>
void backward_ray(Ray<T>& ray, int64_t i, const Upstream<T>& up, const DecoderGrads<T>& g,
                  T* grad_planes, T* points, T* grads, std::vector<T>& scratch) {
  const View<T>& v = ray.v;
  const int64_t S = v.S, C = v.C, Hd = v.Hd, O = v.O, F = O - 1;
  ray.start(i / v.R, i % v.R);
  const T* stats_row = up.stats + i * (2 + S);
  const T* sigma = stats_row + 2;
  const T* g_rgb = up.rgb + i * F;
  const WeightGradTerms<T> dl_dw = make_weight_grad_terms(
      g_rgb, F, v.white_back, up.depth[i], up.weights_sum[i], stats_row[0], stats_row[1], v.lo,
      v.hi);
  // scratch: gdot, grad_sigma, G, trans_before, kept (S each), dout (S, O), dpre (S, Hd),
  // df (kGroup, C) for the direct scatter
  T* gdot = scratch.data();
  T* grad_sigma = gdot + S;
  T* G = grad_sigma + S;
  T* trans_before = G + S;
  T* kept = trans_before + S;  // 1 for a kept interval
  T* dout = kept + S;          // (S, O), by row
  T* dpre = dout + S * O;      // (S, Hd), by row
  T* df = dpre + S * Hd;       // (kGroup, C)
  auto interval = [&](int64_t k) {
    return composite::make_interval<T>(sigma[k], sigma[k + 1], ray.t[k], ray.t[k + 1]);
  };
  // Sweep 1, no decoding: the kept intervals, their weights and transmittances.
  T trans = 1;
  int64_t last = -1;
  for (int64_t k = 0; k + 1 < S; ++k) {
    if (composite::terminated(trans, v.t_min)) break;
    last = k;
    const Interval<T> iv = interval(k);
    trans_before[k] = trans;
    kept[k] = composite::skipped(iv.alpha, v.alpha_min) ? T(0) : T(1);
    ray.w[k] = kept[k] != T(0) ? iv.alpha * trans : T(0);
    if (kept[k] != T(0)) trans = composite::next_transmittance(trans, iv.alpha);
  }
  for (int64_t k = last + 1; k + 1 < S; ++k) ray.w[k] = T(0);
  // The samples a kept interval touches, decoded into packed rows.
  int64_t n_rows = 0;
  for (int64_t j = 0; j < S; ++j) {
    const bool touched = (j >= 1 && j - 1 <= last && kept[j - 1] != T(0)) ||
                         (j <= last && kept[j] != T(0));
    ray.row_of[j] = touched ? n_rows : -1;
    if (touched) ray.samples[n_rows++] = j;
  }
  for (int64_t r0 = 0; r0 < n_rows; r0 += kGroup) {
    const int count = static_cast<int>(std::min<int64_t>(kGroup, n_rows - r0));
    const int n_next = static_cast<int>(std::min<int64_t>(kGroup, n_rows - r0 - count));
    int64_t rows[kGroup];
    for (int q = 0; q < count; ++q) rows[q] = r0 + q;
    ray.decode_group(ray.samples.data() + r0, rows, count, ray.samples.data() + r0 + count,
                     n_next);
    ray.colors_group(rows, count);
    for (int q = 0; q < count; ++q) {
      const int64_t j = ray.samples[r0 + q];
      // From here on the row's colour outputs hold their sigmoids (needed twice below).
      T* s = ray.out.data() + (r0 + q) * O + 1;
      NGK_SIMD
      for (int64_t c = 0; c < F; ++c) s[c] = cpu::vsigmoid(s[c]);
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < F; ++c) dot += g_rgb[c] * decoder::color_of(s[c]);
      gdot[j] = dot;
      grad_sigma[j] = T(0);
    }
  }
  // Sweep 2: G_k = dL/dw_k over the kept intervals, and their total.
  T total = 0;
  for (int64_t k = 0; k <= last; ++k) {
    if (kept[k] == T(0)) continue;
    G[k] = dl_dw(gdot[k], gdot[k + 1], interval(k).t_mid, up.weights[i * (S - 1) + k]);
    total += G[k] * ray.w[k];
  }
  // Sweep 3: density gradients from the suffix sums.
  T prefix = 0;
  for (int64_t k = 0; k <= last; ++k) {
    if (kept[k] == T(0)) continue;
    prefix += G[k] * ray.w[k];
    const T dx = composite::interval_backward(interval(k), trans_before[k], G[k], total - prefix);
    grad_sigma[k] += dx / T(2);
    grad_sigma[k + 1] += dx / T(2);
  }
  // The banded scatter's points (NaN for samples no gradient reaches, which it skips).
  for (int64_t j = 0; grad_planes == nullptr && j < S; ++j) {
    T* pj = points + j * 3;
    const int64_t r = ray.row_of[j];
    for (int c = 0; c < 3; ++c) {
      pj[c] = r < 0 ? std::numeric_limits<T>::quiet_NaN() : ray.x[r * 3 + c];
    }
  }
  // The decoded samples through the decoder's backward, kGroup at a time (input side; the
  // weight gradients for the whole ray at the end, over the packed rows).
  for (int64_t r0 = 0; r0 < n_rows; r0 += kGroup) {
    const int count = static_cast<int>(std::min<int64_t>(kGroup, n_rows - r0));
    const T *prep[kGroup], *doutp[kGroup];
    T *dprep[kGroup], *dfp[kGroup];
    for (int q = 0; q < count; ++q) {
      const int64_t r = r0 + q, j = ray.samples[r];
      const T a = ray.color_weight(j);
      const T* s = ray.out.data() + r * O + 1;  // the colours' sigmoids
      T* dout_r = dout + r * O;
      dout_r[0] = grad_sigma[j];
      NGK_SIMD
      for (int64_t c = 0; c < F; ++c) dout_r[1 + c] = g_rgb[c] * a * decoder::color_grad(s[c]);
      prep[q] = ray.pre.data() + r * Hd;
      doutp[q] = dout_r;
      dprep[q] = dpre + r * Hd;
      dfp[q] = grad_planes != nullptr ? df + q * C : grads + j * C;
    }
    decoder_backward_input_n(count, v.w0, v.w1, prep, doutp, C, Hd, O, dprep, dfp);
    if (grad_planes == nullptr) continue;
    T* ray_planes = grad_planes + (v.Np == 1 ? 0 : i / v.R) * 3 * v.H * v.W * C;
    for (int q = 0; q < count; ++q) {
      scatter_channels(ray.taps[ray.samples[r0 + q]], dfp[q], v.H, v.W, C, ray_planes);
    }
  }
  decoder::linear_backward_weight(ray.h.data(), dout, n_rows, Hd, O, g.w1t, g.b1);
  decoder::linear_backward_weight(ray.f.data(), dpre, n_rows, C, Hd, g.w0t, g.b0);
}

// Whether the backward scatters the planes' gradient directly, each thread into its own copy
// of it (the first thread into the output), the copies added at the end: cheaper than the
// banded scatter's pass over (rays x S x C) buffers, but (threads - 1) plane-sized copies, so
// only while they fit in kDirectScatterBytes.
constexpr int64_t kDirectScatterBytes = int64_t(64) << 20;

template <typename T>
void backward_kernel(const Problem& p, const View<T>& v, const Upstream<T>& up,
                     at::Tensor& grad_planes_cl, T* g_w0t, T* g_b0, T* g_w1t, T* g_b1) {
  const int64_t N = v.N, R = v.R, S = v.S, C = v.C, Hd = v.Hd, O = v.O;
  const int64_t rays_per_chunk = std::max<int64_t>(1, std::min<int64_t>(R, kChunkRays / N));
  const int64_t sizes[4] = {C * Hd, Hd, Hd * O, O};
  const int64_t slot = sizes[0] + sizes[1] + sizes[2] + sizes[3];
  const auto opts = p.planes_cl.options();
  const int threads = at::get_num_threads();
  const bool direct = (threads - 1) * grad_planes_cl.numel() * int64_t(sizeof(T)) <=
                      kDirectScatterBytes;
  std::vector<at::Tensor> copies;  // the planes' gradient of threads 1, 2, ... (direct)
  at::Tensor points_buf, grads_buf;  // one chunk's points and feature gradients (banded)
  if (direct) {
    for (int t = 1; t < threads; ++t) copies.push_back(at::zeros_like(grad_planes_cl));
  } else {
    points_buf = at::empty({N * rays_per_chunk * S * 3}, opts);
    grads_buf = at::empty({N * rays_per_chunk * S * C}, opts);
  }
  const std::vector<int64_t> order = ray_order(v);  // chunks of rays near each other
  for (int64_t r0 = 0; r0 < R; r0 += rays_per_chunk) {
    const int64_t Rc = std::min(rays_per_chunk, R - r0);
    const int64_t rays = N * Rc, blocks = (rays + kBlockRays - 1) / kBlockRays;
    std::vector<T> slots(blocks * slot, T(0));
    T* points = direct ? nullptr : points_buf.data_ptr<T>();
    T* grads = direct ? nullptr : grads_buf.data_ptr<T>();
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      const cpu::FlushDenormals no_denormals;
      T* grad_planes = nullptr;
      if (direct) {
        const int t = at::get_thread_num();
        TORCH_CHECK(t >= 0 && t < threads, "render_triplane backward: thread ", t, " of ",
                    threads);
        grad_planes = (t == 0 ? grad_planes_cl : copies[t - 1]).data_ptr<T>();
      }
      Ray<T> ray(v);
      std::vector<T> scratch(S * (5 + O + Hd) + kGroup * C);
      for (int64_t b = begin; b < end; ++b) {
        T* s = slots.data() + b * slot;
        const DecoderGrads<T> g{s, s + sizes[0], s + sizes[0] + sizes[1],
                                s + sizes[0] + sizes[1] + sizes[2]};
        for (int64_t q = b * kBlockRays; q < std::min(rays, (b + 1) * kBlockRays); ++q) {
          const int64_t n = q / Rc, r = order[r0 + q % Rc];
          backward_ray(ray, n * R + r, up, g, grad_planes,
                       direct ? nullptr : points + q * S * 3, direct ? nullptr : grads + q * S * C,
                       scratch);
        }
      }
    });
    // The slots, in block order.
    T* totals[4] = {g_w0t, g_b0, g_w1t, g_b1};
    for (int64_t b = 0; b < blocks; ++b) {
      const T* s = slots.data() + b * slot;
      for (int part = 0, off = 0; part < 4; off += sizes[part], ++part) {
        for (int64_t e = 0; e < sizes[part]; ++e) totals[part][e] += s[off + e];
      }
    }
    if (direct) continue;
    const at::Tensor chunk_points = points_buf.narrow(0, 0, rays * S * 3).view({N, Rc * S, 3});
    const at::Tensor chunk_grads = grads_buf.narrow(0, 0, rays * S * C).view({N, Rc * S, C});
    triplane::accumulate_planes_grad_cpu(chunk_grads, p.planes_cl, chunk_points, p.scale,
                                         triplane::Reduce::kMean, grad_planes_cl);
  }
  for (const at::Tensor& copy : copies) grad_planes_cl.add_(copy);
}

}  // namespace

void forward(const Problem& p, at::Tensor& rgb, at::Tensor& depth, at::Tensor& weights,
                 at::Tensor& weights_sum, at::Tensor& stats) {
  AT_DISPATCH_FLOATING_TYPES(p.planes_cl.scalar_type(), "render_triplane_cpu", [&] {
    const View<scalar_t> v(p);
    forward_kernel<scalar_t>(v, rgb.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>(),
                             weights.data_ptr<scalar_t>(), weights_sum.data_ptr<scalar_t>(),
                             stats.data_ptr<scalar_t>());
  });
}

void backward(const Problem& p, const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                  const at::Tensor& grad_weights, const at::Tensor& grad_weights_sum,
                  const at::Tensor& stats, at::Tensor& grad_planes_cl, at::Tensor& g_w0t,
                  at::Tensor& g_b0, at::Tensor& g_w1t, at::Tensor& g_b1) {
  AT_DISPATCH_FLOATING_TYPES(p.planes_cl.scalar_type(), "render_triplane_backward_cpu", [&] {
    const View<scalar_t> v(p);
    const Upstream<scalar_t> up{grad_rgb.data_ptr<scalar_t>(), grad_depth.data_ptr<scalar_t>(),
                                grad_weights.data_ptr<scalar_t>(),
                                grad_weights_sum.data_ptr<scalar_t>(),
                                stats.data_ptr<scalar_t>()};
    backward_kernel<scalar_t>(p, v, up, grad_planes_cl, g_w0t.data_ptr<scalar_t>(),
                              g_b0.data_ptr<scalar_t>(), g_w1t.data_ptr<scalar_t>(),
                              g_b1.data_ptr<scalar_t>());
  });
}

}  // namespace NGK_CPU_NS
}  // namespace fused
}  // namespace nerfgan_kernels
NGK_CPU_END
