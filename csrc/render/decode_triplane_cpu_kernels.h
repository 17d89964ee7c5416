// The CPU kernels of decode_triplane, compiled once per instruction set (cpu/simd.h) by
// decode_triplane_cpu_{baseline,avx2,avx512}.cpp; decode_triplane_cpu.cpp picks one. The
// per-point math is render_triplane's: the gather (render_triplane_math.h's gather_channels),
// the decoder (decoder_hidden_n, decoder_colors_n, decoder_backward_input_n, on groups of
// kGroup points) and the planes' scatter
// (triplane_sample's accumulate_planes_grad_cpu).
//
// Forward: points in parallel, each gathered and decoded in per-thread scratch (C + 2 Hd + O
// values), the next point's taps prefetched while the MLP runs. Backward: per chunk of points,
// each block of kBlockPoints points is recomputed, its decoder backward gives the feature
// gradients df (chunk x C, the only per-point buffer) and the block's decoder gradients are one
// matrix product per layer into the block's slot; the slots are added in order (results do not
// depend on the thread count) and df is scattered into the planes' gradient by the deterministic
// banded scatter of triplane_sample. Points whose upstream gradient is zero are skipped. Both
// kernels run with denormals flushed to zero (cpu::FlushDenormals).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "../cpu/simd.h"
#include "../triplane/triplane_sample.h"
#include "decode_triplane.h"
#include "decoder_cpu.h"
#include "decoder_math.h"
#include "render_triplane_math.h"

NGK_CPU_BEGIN
namespace nerfgan_kernels {
namespace fused {
namespace NGK_CPU_NS {
namespace {

constexpr int64_t kChunkPoints = 16384;  // points (all batches) per scatter chunk
constexpr int64_t kBlockPoints = 64;     // points per decoder-gradient slot
constexpr int kGroup = decoder::kMaxPoints;  // points that go through the decoder together

template <typename T>
struct PointView {
  const T *planes, *w0, *w0t, *b0, *w1, *w1t, *b1, *coords;
  int64_t Np, Nc, N, M, C, H, W, Hd, O;
  T scale;

  explicit PointView(const Points& p)
      : planes(p.planes_cl.data_ptr<T>()), w0(p.w0.data_ptr<T>()), w0t(p.w0t.data_ptr<T>()),
        b0(p.b0.data_ptr<T>()), w1(p.w1.data_ptr<T>()), w1t(p.w1t.data_ptr<T>()),
        b1(p.b1.data_ptr<T>()), coords(p.coords.data_ptr<T>()), Np(p.Np), Nc(p.Nc), N(p.N),
        M(p.M), C(p.C), H(p.H), W(p.W), Hd(p.Hd), O(p.O), scale(static_cast<T>(p.scale)) {}

  // Point i = (n, m) of the N * M outputs: its plane set (3, H, W, C) and coordinates (3).
  const T* planes_of(int64_t i) const {
    return planes + (Np == 1 ? 0 : i / M) * 3 * H * W * C;
  }
  const T* point(int64_t i) const { return coords + ((Nc == 1 ? 0 : i / M) * M + i % M) * 3; }

  // Gathers and decodes the count <= kGroup points is into consecutive rows of f (C), pre,
  // h (Hd) and out (O); the taps of the points `next` are prefetched while their MLP runs.
  void decode_group(const int64_t* is, int count, T* f, T* pre, T* h, T* out,
                    const int64_t* next, int n_next) const {
    const T* fp[kGroup];
    T *pp[kGroup], *hp[kGroup], *op[kGroup];
    for (int q = 0; q < count; ++q) {
      gather_channels(make_plane_taps(point(is[q]), scale, H, W), planes_of(is[q]), H, W, C, 0,
                      C, f + q * C);
      fp[q] = f + q * C;
      pp[q] = pre + q * Hd;
      hp[q] = h + q * Hd;
      op[q] = out + q * O;
    }
    for (int q = 0; q < n_next; ++q) {
      prefetch_taps(planes_of(next[q]), make_plane_taps(point(next[q]), scale, H, W), H, W, C);
    }
    decoder_hidden_n(count, fp, w0t, b0, C, Hd, pp, hp);
    for (int q = 0; q < count; ++q) op[q][0] = decoder_density(hp[q], w1, b1, Hd);
    decoder_colors_n(count, hp, w1t, b1, Hd, O, op);
  }
};

template <typename T>
void forward_kernel(const PointView<T>& v, T* features, T* density) {
  const int64_t F = v.O - 1;
  at::parallel_for(0, v.N * v.M, 64, [&](int64_t begin, int64_t end) {
    const cpu::FlushDenormals no_denormals;
    std::vector<T> scratch(kGroup * (v.C + 2 * v.Hd + v.O));
    T *f = scratch.data(), *pre = f + kGroup * v.C, *h = pre + kGroup * v.Hd;
    T* out = h + kGroup * v.Hd;
    for (int64_t i0 = begin; i0 < end; i0 += kGroup) {
      const int count = static_cast<int>(std::min<int64_t>(kGroup, end - i0));
      const int n_next = static_cast<int>(std::min<int64_t>(kGroup, end - i0 - count));
      int64_t is[kGroup], next[kGroup];
      for (int q = 0; q < count; ++q) is[q] = i0 + q;
      for (int q = 0; q < n_next; ++q) next[q] = i0 + count + q;
      v.decode_group(is, count, f, pre, h, out, next, n_next);
      for (int q = 0; q < count; ++q) {
        const T* oq = out + q * v.O;
        density[i0 + q] = oq[0];
        for (int64_t c = 0; c < F; ++c) features[(i0 + q) * F + c] = color_of_output(oq[1 + c]);
      }
    }
  });
}

template <typename T>
void backward_kernel(const Points& p, const PointView<T>& v, const T* g_features,
                     const T* g_density, at::Tensor& grad_planes_cl, T* const totals[4]) {
  const int64_t N = v.N, M = v.M, C = v.C, Hd = v.Hd, O = v.O, F = O - 1;
  const int64_t points_per_chunk = std::max<int64_t>(1, std::min<int64_t>(M, kChunkPoints / N));
  const int64_t sizes[4] = {C * Hd, Hd, Hd * O, O};
  const int64_t slot = sizes[0] + sizes[1] + sizes[2] + sizes[3];
  const auto opts = p.planes_cl.options();
  at::Tensor points_buf = at::empty({N * points_per_chunk * 3}, opts);
  at::Tensor grads_buf = at::empty({N * points_per_chunk * C}, opts);
  for (int64_t m0 = 0; m0 < M; m0 += points_per_chunk) {
    const int64_t Mc = std::min(points_per_chunk, M - m0);
    const int64_t count = N * Mc, blocks = (count + kBlockPoints - 1) / kBlockPoints;
    std::vector<T> slots(blocks * slot, T(0));
    T* points = points_buf.data_ptr<T>();
    T* grads = grads_buf.data_ptr<T>();
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      const cpu::FlushDenormals no_denormals;
      // Per block: f (B, C), pre / h / dpre (B, Hd), out / dout (B, O).
      std::vector<T> scratch(kBlockPoints * (C + 3 * Hd + 2 * O));
      T *f = scratch.data(), *pre = f + kBlockPoints * C, *h = pre + kBlockPoints * Hd;
      T *dpre = h + kBlockPoints * Hd, *out = dpre + kBlockPoints * Hd;
      T* dout = out + kBlockPoints * O;
      std::vector<int64_t> active_i(kBlockPoints), active_q(kBlockPoints);
      for (int64_t b = begin; b < end; ++b) {
        int64_t used = 0;  // the block's points with a gradient, packed
        for (int64_t q = b * kBlockPoints; q < std::min(count, (b + 1) * kBlockPoints); ++q) {
          const int64_t i = (q / Mc) * M + m0 + q % Mc;  // the point among the N * M outputs
          T* pq = points + q * 3;
          const T* gf = g_features + i * F;
          bool any = g_density[i] != T(0);
          for (int64_t c = 0; c < F && !any; ++c) any = gf[c] != T(0);
          if (!any) {
            pq[0] = pq[1] = pq[2] = std::numeric_limits<T>::quiet_NaN();  // the scatter skips it
            continue;
          }
          const T* x = v.point(i);
          for (int a = 0; a < 3; ++a) pq[a] = x[a];
          active_i[used] = i;
          active_q[used++] = q;
        }
        for (int64_t u0 = 0; u0 < used; u0 += kGroup) {  // kGroup points at a time
          const int n = static_cast<int>(std::min<int64_t>(kGroup, used - u0));
          const int n_next = static_cast<int>(std::min<int64_t>(kGroup, used - u0 - n));
          v.decode_group(active_i.data() + u0, n, f + u0 * C, pre + u0 * Hd, h + u0 * Hd,
                         out + u0 * O, active_i.data() + u0 + n, n_next);
          const T *prep[kGroup], *doutp[kGroup];
          T *dprep[kGroup], *dfp[kGroup];
          for (int q = 0; q < n; ++q) {
            const int64_t u = u0 + q, i = active_i[u];
            const T* gf = g_features + i * F;
            const T* outu = out + u * O;
            T* doutu = dout + u * O;
            doutu[0] = g_density[i];
            NGK_SIMD
            for (int64_t c = 0; c < F; ++c) {
              doutu[1 + c] = gf[c] * color_grad_of_output(outu[1 + c]);
            }
            prep[q] = pre + u * Hd;
            doutp[q] = doutu;
            dprep[q] = dpre + u * Hd;
            dfp[q] = grads + active_q[u] * C;
          }
          decoder_backward_input_n(n, v.w0, v.w1, prep, doutp, C, Hd, O, dprep, dfp);
        }
        T* s = slots.data() + b * slot;
        decoder::linear_backward_weight(h, dout, used, Hd, O, s + sizes[0] + sizes[1],
                                        s + sizes[0] + sizes[1] + sizes[2]);
        decoder::linear_backward_weight(f, dpre, used, C, Hd, s, s + sizes[0]);
      }
    });
    for (int64_t b = 0; b < blocks; ++b) {  // the slots, in block order
      const T* s = slots.data() + b * slot;
      for (int part = 0, off = 0; part < 4; off += sizes[part], ++part) {
        for (int64_t e = 0; e < sizes[part]; ++e) totals[part][e] += s[off + e];
      }
    }
    const at::Tensor chunk_points = points_buf.narrow(0, 0, count * 3).view({N, Mc, 3});
    const at::Tensor chunk_grads = grads_buf.narrow(0, 0, count * C).view({N, Mc, C});
    triplane::accumulate_planes_grad_cpu(chunk_grads, p.planes_cl, chunk_points, p.scale,
                                         triplane::Reduce::kMean, grad_planes_cl);
  }
}

}  // namespace

void decode_forward(const Points& p, at::Tensor& features, at::Tensor& density) {
  AT_DISPATCH_FLOATING_TYPES(p.planes_cl.scalar_type(), "decode_triplane_cpu", [&] {
    forward_kernel<scalar_t>(PointView<scalar_t>(p), features.data_ptr<scalar_t>(),
                             density.data_ptr<scalar_t>());
  });
}

void decode_backward(const Points& p, const at::Tensor& grad_features,
                     const at::Tensor& grad_density, at::Tensor& grad_planes_cl,
                     at::Tensor& g_w0t, at::Tensor& g_b0, at::Tensor& g_w1t, at::Tensor& g_b1) {
  AT_DISPATCH_FLOATING_TYPES(p.planes_cl.scalar_type(), "decode_triplane_backward_cpu", [&] {
    scalar_t* const totals[4] = {g_w0t.data_ptr<scalar_t>(), g_b0.data_ptr<scalar_t>(),
                                 g_w1t.data_ptr<scalar_t>(), g_b1.data_ptr<scalar_t>()};
    backward_kernel<scalar_t>(p, PointView<scalar_t>(p), grad_features.data_ptr<scalar_t>(),
                              grad_density.data_ptr<scalar_t>(), grad_planes_cl, totals);
  });
}

}  // namespace NGK_CPU_NS
}  // namespace fused
}  // namespace nerfgan_kernels
NGK_CPU_END
