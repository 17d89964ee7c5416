// The CPU kernels of triplane_sample, compiled once per instruction set (cpu/simd.h) by
// triplane_sample_cpu_{baseline,avx2,avx512}.cpp. Declared in triplane_sample_cpu.h.
//
// Forward: one task per point; its (up to) 12 taps are gathered first, then the channels are
// blended in register blocks and every output row is stored once.
// Backward: the planes' gradient is a scatter. Each task owns a band of rows of one plane slice
// and writes only there, so no atomics and no private copies are needed and the result does not
// depend on scheduling. With fewer slices than threads the slices are cut into bands of equal
// point counts; the points are first bucketed by band (a stable counting sort, so every texel
// sums its contributions in point order: deterministic for a fixed thread count). A point whose
// two stencil rows fall in two bands is visited by both, each writing its own row.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "../cpu/simd.h"
#include "triplane_sample_cpu.h"

NGK_CPU_BEGIN
namespace nerfgan_kernels {
namespace triplane {
namespace NGK_CPU_NS {
namespace {

// dst[0, C) = (sum_j w[j] * src[j][0, C)) / divisor, accumulated in acc_t, each entry stored once.
template <typename scalar_t, typename acc_t>
inline void blend(int n, const scalar_t* const* src, const acc_t* w, int64_t C, acc_t divisor,
                  scalar_t* dst) {
  constexpr int64_t B = cpu::kBlock<acc_t>;
  int64_t c0 = 0;
  for (; c0 + B <= C; c0 += B) {
    acc_t acc[B] = {};
    for (int j = 0; j < n; ++j) {
      const scalar_t* p = src[j] + c0;
      const acc_t wj = w[j];
      for (int64_t c = 0; c < B; ++c) acc[c] += wj * static_cast<acc_t>(p[c]);
    }
    for (int64_t c = 0; c < B; ++c) dst[c0 + c] = static_cast<scalar_t>(acc[c] / divisor);
  }
  const int64_t rest = C - c0;
  if (rest > 0) {
    acc_t acc[B] = {};
    for (int j = 0; j < n; ++j) {
      const scalar_t* p = src[j] + c0;
      const acc_t wj = w[j];
      for (int64_t c = 0; c < rest; ++c) acc[c] += wj * static_cast<acc_t>(p[c]);
    }
    for (int64_t c = 0; c < rest; ++c) dst[c0 + c] = static_cast<scalar_t>(acc[c] / divisor);
  }
}

// The sampling is a gather at random texels: its time is memory latency. Every loop over points
// therefore prefetches the rows of the point kAhead positions later.
constexpr int kAhead = 8;

using cpu::prefetch_row;

// The (up to) 12 taps of one point: rows and weights, plane k's taps ending at end[k].
template <typename scalar_t, typename acc_t>
struct Gathered {
  const scalar_t* src[12];
  acc_t w[12];
  int end[3];
};

template <typename scalar_t, typename acc_t>
void forward_kernel(const scalar_t* planes, const acc_t* coords, scalar_t* out, const Sizes s,
                    acc_t scale, Reduce reduce) {
  const int64_t C = s.C, M = s.M, plane_size = s.plane_size();
  const acc_t divisor = reduce == Reduce::kMean ? acc_t(3) : acc_t(1);
  auto gather = [&](int64_t i, Gathered<scalar_t, acc_t>& g) {
    const int64_t n = i / M, m = i % M;
    const acc_t* p = coords + ((s.Nc == 1 ? 0 : n) * M + m) * 3;
    const scalar_t* planes_n = planes + (s.Np == 1 ? 0 : n) * 3 * plane_size;
    int count = 0;
    for (int k = 0; k < 3; ++k) {
      acc_t u, v;
      plane_uv(k, p[0], p[1], p[2], scale, u, v);
      const Stencil<acc_t> st = make_stencil(u, v, s.H, s.W);
      for (int t = 0; t < 4; ++t) {
        if (!st.valid[t]) continue;
        g.src[count] = planes_n + k * plane_size + st.offset[t] * C;
        g.w[count] = st.weight[t];
        prefetch_row(g.src[count], C);
        ++count;
      }
      g.end[k] = count;
    }
  };
  at::parallel_for(0, s.N * M, 256, [&](int64_t begin, int64_t end) {
    Gathered<scalar_t, acc_t> ring[kAhead];
    for (int64_t i = begin; i < std::min<int64_t>(end, begin + kAhead); ++i) {
      gather(i, ring[(i - begin) % kAhead]);
    }
    for (int64_t i = begin; i < end; ++i) {
      Gathered<scalar_t, acc_t>& g = ring[(i - begin) % kAhead];
      if (reduce == Reduce::kNone) {
        const int64_t n = i / M, m = i % M;
        for (int k = 0; k < 3; ++k) {
          const int first = k == 0 ? 0 : g.end[k - 1];
          blend(g.end[k] - first, g.src + first, g.w + first, C, acc_t(1),
                out + ((n * 3 + k) * M + m) * C);
        }
      } else {
        blend(g.end[2], g.src, g.w, C, divisor, out + i * C);
      }
      if (i + kAhead < end) gather(i + kAhead, g);
    }
  });
}

// Everything a backward task reads and writes.
template <typename scalar_t, typename acc_t>
struct Backward {
  const scalar_t* grad;
  const scalar_t* planes;
  const acc_t* coords;
  acc_t* grad_planes;     // (Np, 3, H, W, C) or nullptr
  acc_t* grad_coords_pp;  // (N, 3, M, 3) or nullptr
  Sizes s;
  acc_t scale, gscale;
  Reduce reduce;
  int64_t points;  // per slice: N * M when Np == 1 (every batch on the one plane set), else M
  bool accumulate;  // add into grad_planes (not zeroed first)

  Stencil<acc_t> stencil(int64_t slice, int64_t j, int64_t& n, int64_t& m) const {
    n = s.Np == 1 ? j / s.M : slice / 3;
    m = j % s.M;
    const acc_t* p = coords + ((s.Nc == 1 ? 0 : n) * s.M + m) * 3;
    acc_t u, v;
    plane_uv(static_cast<int>(slice % 3), p[0], p[1], p[2], scale, u, v);
    return make_stencil(u, v, s.H, s.W);
  }

  // Point j of a slice: scatters the taps on rows [row_lo, row_hi) into the planes' gradient
  // and, with_coords, writes the point's coordinate gradient on this plane. g: C scratch.
  void point(int64_t slice, int64_t j, int64_t row_lo, int64_t row_hi, bool with_coords, acc_t* g,
             const scalar_t* zeros) const {
    const int64_t C = s.C, plane_size = s.plane_size();
    const int k = static_cast<int>(slice % 3);
    int64_t n, m;
    const Stencil<acc_t> st = stencil(slice, j, n, m);
    acc_t* gc = grad_coords_pp != nullptr && with_coords
                    ? grad_coords_pp + ((n * 3 + k) * s.M + m) * 3 : nullptr;
    if (!(st.valid[0] || st.valid[1] || st.valid[2] || st.valid[3])) {
      if (gc != nullptr) gc[0] = gc[1] = gc[2] = acc_t(0);
      return;
    }
    const scalar_t* go = grad + (reduce == Reduce::kNone ? ((n * 3 + k) * s.M + m) * C
                                                         : (n * s.M + m) * C);
    for (int64_t c = 0; c < C; ++c) g[c] = static_cast<acc_t>(go[c]) * gscale;
    if (grad_planes != nullptr) {
      acc_t* gp = grad_planes + slice * plane_size;
      for (int t = 0; t < 4; ++t) {
        const int64_t row = st.y0 + (t >> 1);
        if (!st.valid[t] || row < row_lo || row >= row_hi) continue;
        const acc_t w = st.weight[t];
        acc_t* dst = gp + st.offset[t] * C;
        for (int64_t c = 0; c < C; ++c) dst[c] += w * g[c];
      }
    }
    if (gc == nullptr) return;
    const scalar_t* base = planes + slice * plane_size;
    const scalar_t* tap[4];
    for (int t = 0; t < 4; ++t) tap[t] = st.valid[t] ? base + st.offset[t] * C : zeros;
    acc_t gix = 0, giy = 0;
#pragma omp simd reduction(+ : gix, giy)
    for (int64_t c = 0; c < C; ++c) {
      const acc_t t0 = static_cast<acc_t>(tap[0][c]), t1 = static_cast<acc_t>(tap[1][c]);
      const acc_t t2 = static_cast<acc_t>(tap[2][c]), t3 = static_cast<acc_t>(tap[3][c]);
      gix += g[c] * (st.wy0 * (t1 - t0) + st.wy1 * (t3 - t2));
      giy += g[c] * (st.wx0 * (t2 - t0) + st.wx1 * (t3 - t1));
    }
    acc_t gx = 0, gy = 0, gz = 0;
    plane_uv_backward(k, gix * st.half_w, giy * st.half_h, scale, gx, gy, gz);
    gc[0] = gx;
    gc[1] = gy;
    gc[2] = gz;
  }

  // Starts loading what point(slice, j, ...) will read and write.
  void prefetch(int64_t slice, int64_t j) const {
    int64_t n, m;
    const Stencil<acc_t> st = stencil(slice, j, n, m);
    const int k = static_cast<int>(slice % 3);
    prefetch_row(grad + (reduce == Reduce::kNone ? ((n * 3 + k) * s.M + m) * s.C
                                                 : (n * s.M + m) * s.C), s.C);
    const int64_t base = slice * s.plane_size();
    for (int t = 0; t < 4; ++t) {
      if (!st.valid[t]) continue;
      if (grad_planes != nullptr) prefetch_row(grad_planes + base + st.offset[t] * s.C, s.C);
      if (grad_coords_pp != nullptr) prefetch_row(planes + base + st.offset[t] * s.C, s.C);
    }
  }

  void zero_rows(int64_t slice, int64_t row_lo, int64_t row_hi) const {
    if (grad_planes == nullptr || accumulate) return;
    const int64_t row = s.W * s.C;
    std::fill(grad_planes + slice * s.plane_size() + row_lo * row,
              grad_planes + slice * s.plane_size() + row_hi * row, acc_t(0));
  }
};

// The points of one slice bucketed by row band: band b owns rows [start[b], start[b+1]);
// primary lists the points whose first stencil row is in the band (their coordinate gradient is
// formed there), spill the points whose second row only is in it. Points in list order.
struct BandPlan {
  std::vector<int64_t> start;                   // bands + 1 row boundaries
  std::vector<int64_t> primary_begin, spill_begin;  // bands + 1 offsets into the lists
  std::vector<uint32_t> primary, spill;
};

// rows: the first stencil row of every point (-1 .. H-1), or kNoTap.
constexpr int32_t kNoTap = INT32_MIN;

BandPlan plan_bands(const int32_t* rows, int64_t points, int64_t H, int64_t bands) {
  BandPlan plan;
  std::vector<int64_t> per_row(H, 0);
  int64_t valid = 0;
  for (int64_t j = 0; j < points; ++j) {
    if (rows[j] == kNoTap) continue;
    ++per_row[std::max<int32_t>(rows[j], 0)];
    ++valid;
  }
  // Boundaries at equal shares of the points, every band at least one row.
  std::vector<int64_t> below(H + 1, 0);  // below[r]: points whose first row is < r
  for (int64_t r = 0; r < H; ++r) below[r + 1] = below[r] + per_row[r];
  plan.start.assign(bands + 1, H);
  plan.start[0] = 0;
  int64_t r = 0;
  for (int64_t b = 1; b < bands; ++b) {
    const int64_t target = (valid * b + bands - 1) / bands;
    while (r < H && below[r] < target) ++r;
    plan.start[b] = std::clamp(r, plan.start[b - 1] + 1, H - (bands - b));
  }
  std::vector<int32_t> band_of_row(H);
  for (int64_t i = 0; i < bands; ++i) {
    for (int64_t r = plan.start[i]; r < plan.start[i + 1]; ++r) {
      band_of_row[r] = static_cast<int32_t>(i);
    }
  }
  plan.primary_begin.assign(bands + 1, 0);
  plan.spill_begin.assign(bands + 1, 0);
  for (int64_t j = 0; j < points; ++j) {
    const int32_t y0 = rows[j];
    if (y0 == kNoTap) continue;
    const int32_t band = band_of_row[std::max<int32_t>(y0, 0)];
    ++plan.primary_begin[band + 1];
    if (y0 >= 0 && y0 + 1 < H && band_of_row[y0 + 1] != band) {
      ++plan.spill_begin[band_of_row[y0 + 1] + 1];
    }
  }
  std::partial_sum(plan.primary_begin.begin(), plan.primary_begin.end(),
                   plan.primary_begin.begin());
  std::partial_sum(plan.spill_begin.begin(), plan.spill_begin.end(), plan.spill_begin.begin());
  plan.primary.resize(plan.primary_begin[bands]);
  plan.spill.resize(plan.spill_begin[bands]);
  std::vector<int64_t> p_next(plan.primary_begin.begin(), plan.primary_begin.end() - 1);
  std::vector<int64_t> s_next(plan.spill_begin.begin(), plan.spill_begin.end() - 1);
  for (int64_t j = 0; j < points; ++j) {
    const int32_t y0 = rows[j];
    if (y0 == kNoTap) continue;
    const int32_t band = band_of_row[std::max<int32_t>(y0, 0)];
    plan.primary[p_next[band]++] = static_cast<uint32_t>(j);
    if (y0 >= 0 && y0 + 1 < H && band_of_row[y0 + 1] != band) {
      plan.spill[s_next[band_of_row[y0 + 1]]++] = static_cast<uint32_t>(j);
    }
  }
  return plan;
}

template <typename scalar_t, typename acc_t>
void backward_kernel(const Backward<scalar_t, acc_t>& bw) {
  const Sizes& s = bw.s;
  const int64_t slices = s.Np * 3, P = bw.points, H = s.H, C = s.C;
  const int64_t threads = at::get_num_threads();
  auto scratch = [C] { return std::vector<acc_t>(C); };
  const std::vector<scalar_t> zeros(C, scalar_t(0));

  if (bw.grad_planes == nullptr) {
    // Coordinates only: every (slice, point) is independent. Point-major, so that a point's
    // output-gradient row is read once for its three planes (as the forward reads its taps).
    const auto slice_of = [&](int64_t i, int k) { return (s.Np == 1 ? 0 : i / s.M) * 3 + k; };
    const auto point_of = [&](int64_t i) { return s.Np == 1 ? i : i % s.M; };
    at::parallel_for(0, s.N * s.M, 1024, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> g = scratch();
      for (int64_t i = begin; i < end; ++i) {
        if (i + kAhead < end) {
          for (int k = 0; k < 3; ++k) bw.prefetch(slice_of(i + kAhead, k), point_of(i + kAhead));
        }
        for (int k = 0; k < 3; ++k) {
          bw.point(slice_of(i, k), point_of(i), 0, 0, true, g.data(), zeros.data());
        }
      }
    });
    return;
  }
  // Bands per slice: enough tasks to keep every thread busy, in whole rounds.
  int64_t bands = slices >= threads ? 1 : threads / std::gcd(slices, threads);
  bands = std::min<int64_t>(bands, H);
  if (P < 4096 || P > int64_t(UINT32_MAX)) bands = 1;

  if (bands == 1) {
    at::parallel_for(0, slices, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> g = scratch();
      for (int64_t slice = begin; slice < end; ++slice) {
        bw.zero_rows(slice, 0, H);
        for (int64_t j = 0; j < P; ++j) {
          if (j + kAhead < P) bw.prefetch(slice, j + kAhead);
          bw.point(slice, j, 0, H, true, g.data(), zeros.data());
        }
      }
    });
    return;
  }
  // First stencil row of every (slice, point).
  std::vector<int32_t> rows(slices * P);
  at::parallel_for(0, slices * P, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t n, m;
      const Stencil<acc_t> st = bw.stencil(i / P, i % P, n, m);
      const bool any = st.valid[0] || st.valid[1] || st.valid[2] || st.valid[3];
      rows[i] = any ? static_cast<int32_t>(st.y0) : kNoTap;
      if (!any && bw.grad_coords_pp != nullptr) {
        const int k = static_cast<int>((i / P) % 3);
        acc_t* gc = bw.grad_coords_pp + ((n * 3 + k) * s.M + m) * 3;
        gc[0] = gc[1] = gc[2] = acc_t(0);
      }
    }
  });
  std::vector<BandPlan> plans(slices);
  at::parallel_for(0, slices, 1, [&](int64_t begin, int64_t end) {
    for (int64_t slice = begin; slice < end; ++slice) {
      plans[slice] = plan_bands(rows.data() + slice * P, P, H, bands);
    }
  });
  at::parallel_for(0, slices * bands, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> g = scratch();
    for (int64_t task = begin; task < end; ++task) {
      const int64_t slice = task / bands, b = task % bands;
      const BandPlan& plan = plans[slice];
      const int64_t lo = plan.start[b], hi = plan.start[b + 1];
      bw.zero_rows(slice, lo, hi);
      const int64_t p_end = plan.primary_begin[b + 1], s_end = plan.spill_begin[b + 1];
      for (int64_t i = plan.primary_begin[b]; i < p_end; ++i) {
        if (i + kAhead < p_end) bw.prefetch(slice, plan.primary[i + kAhead]);
        bw.point(slice, plan.primary[i], lo, hi, true, g.data(), zeros.data());
      }
      for (int64_t i = plan.spill_begin[b]; i < s_end; ++i) {
        bw.point(slice, plan.spill[i], lo, hi, false, g.data(), zeros.data());
      }
    }
  });
}

}  // namespace

void forward(const at::Tensor& planes_cl, const at::Tensor& coords, double scale, Reduce reduce,
             at::Tensor& out) {
  const Sizes s = sizes_of(planes_cl, coords);
  const auto type = planes_cl.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, type, "triplane_sample_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    forward_kernel<scalar_t, acc_t>(planes_cl.data_ptr<scalar_t>(), coords.data_ptr<acc_t>(),
                                    out.data_ptr<scalar_t>(), s, static_cast<acc_t>(scale),
                                    reduce);
  });
}

void backward(const at::Tensor& grad_out, const at::Tensor& planes_cl, const at::Tensor& coords,
              double scale, Reduce reduce, BackwardOutputs& outs) {
  const Sizes s = sizes_of(planes_cl, coords);
  const auto type = planes_cl.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, type, "triplane_sample_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    Backward<scalar_t, acc_t> bw{
        grad_out.data_ptr<scalar_t>(),
        planes_cl.data_ptr<scalar_t>(),
        coords.data_ptr<acc_t>(),
        outs.grad_planes.defined() ? outs.grad_planes.data_ptr<acc_t>() : nullptr,
        outs.grad_coords_pp.defined() ? outs.grad_coords_pp.data_ptr<acc_t>() : nullptr,
        s,
        static_cast<acc_t>(scale),
        reduce == Reduce::kMean ? acc_t(1) / acc_t(3) : acc_t(1),
        reduce,
        (s.Np == 1 ? s.N : 1) * s.M,
        outs.accumulate};
    backward_kernel(bw);
  });
}

}  // namespace NGK_CPU_NS
}  // namespace triplane
}  // namespace nerfgan_kernels
NGK_CPU_END
