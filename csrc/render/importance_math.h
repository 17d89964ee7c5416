// Per-ray math of importance sampling and sample merging, shared by the CPU and CUDA kernels.
//
// sample_pdf (EG3D's sample_importance + sample_pdf, see docs/eg3d.md 4.2), for
// one ray with coarse depths z (D values, sorted) and coarse march weights w (D - 1 values):
//   m_k = max(w_{k-1}, w_k)          max-pool, window 2, stride 1, padding 1 (D values)
//   a_k = (m_k + m_{k+1}) / 2 + 0.01  avg-pool, window 2, stride 1 (D - 1 values)
//   pdf weights p_i = a_{i+1} + 1e-5, i = 0 .. D-4 (D - 3 values), normalized by their sum
//   cdf (D - 2 entries) = [0, cumsum(pdf)];  bins b_i = (z_i + z_{i+1}) / 2, i = 0 .. D-2
//   k = #(cdf <= u), below = max(k - 1, 0), above = min(k, D - 3)
//   t = b_below + (u - cdf_below) / denom * (b_above - b_below), denom < 1e-5 replaced by 1.
// The interior smoothed weights a_1 .. a_{D-3} never see the max-pool padding. Every step is
// rounded in the same order as EG3D's torch code; the sum and the cumulative sum accumulate in
// double (as torch.cumsum does on the CPU) and are rounded to T.
//
// merge_samples, for one ray: the sorted list a (Sa) and the unsorted list b (Sb) are merged into
// one ascending list of Sa + Sb samples; b is sorted first (stable, by counting ranks), then a
// two-pointer merge takes a before b on ties. Depths are ordered with NaN after every number.
#pragma once

#include <cstdint>

#include "../common/macros.h"

namespace nerfgan_kernels {
namespace importance {

// ---- sample_pdf

// torch's max-pool step: the later value wins when it is greater or NaN (NaN propagates).
template <typename T>
NGK_HOST_DEVICE T pool_max(T first, T second) {
  return (second > first || second != second) ? second : first;
}

// pdf weight p_i (before normalization) of one ray, 0 <= i < D - 3; w holds the D - 1 coarse
// weights of the ray, contiguous.
template <typename T>
NGK_HOST_DEVICE T pdf_weight(const T* w, int64_t i) {
  const T m0 = pool_max(w[i], w[i + 1]);      // m_{i+1}
  const T m1 = pool_max(w[i + 1], w[i + 2]);  // m_{i+2}
  return (m0 + m1) / T(2) + T(0.01) + T(1e-5);
}

// Bin i of one ray: the midpoint of coarse depths i and i + 1 (z contiguous, D values).
template <typename T>
NGK_HOST_DEVICE T bin_mid(const T* z, int64_t i) {
  return T(0.5) * (z[i] + z[i + 1]);
}

// The CDF of one ray into cdf[0 .. D-3] (D - 2 entries, cdf[0] = 0). Requires D >= 4.
template <typename T>
NGK_HOST_DEVICE void build_cdf(const T* w, int64_t D, T* cdf) {
  const int64_t P = D - 3;
  double total = 0;
  for (int64_t i = 0; i < P; ++i) {  // cdf[1 ..] holds the unnormalized weights for now
    cdf[i + 1] = pdf_weight(w, i);
    total += static_cast<double>(cdf[i + 1]);
  }
  const T sum = static_cast<T>(total);
  double running = 0;
  cdf[0] = T(0);
  for (int64_t i = 1; i <= P; ++i) {
    running += static_cast<double>(cdf[i] / sum);
    cdf[i] = static_cast<T>(running);
  }
}

// torch.searchsorted(cdf, u, right=True): the number of leading entries <= u (cdf ascending,
// n entries); a NaN u gives n. Branchless: the loop count depends on n only, so random u cost
// no mispredicted branches on the CPU and no divergence on the GPU.
template <typename T>
NGK_HOST_DEVICE int64_t search_right(const T* cdf, int64_t n, T u) {
  if (n <= 0) return 0;
  int64_t base = 0;
  for (int64_t len = n; len > 1; len -= len / 2) {
    base = !(cdf[base + len / 2] > u) ? base + len / 2 : base;
  }
  return base + (!(cdf[base] > u) ? 1 : 0);
}

// Inverse-CDF step: the fine depth of one ray for one u (cdf from build_cdf, z the D coarse
// depths of the ray).
template <typename T>
NGK_HOST_DEVICE T inverse_cdf(const T* cdf, const T* z, int64_t D, T u) {
  const int64_t k = search_right(cdf, D - 2, u);
  const int64_t below = k > 1 ? k - 1 : 0;
  const int64_t above = k < D - 3 ? k : D - 3;
  T denom = cdf[above] - cdf[below];
  if (denom < T(1e-5)) denom = T(1);
  const T bin_below = bin_mid(z, below);
  const T bin_above = bin_mid(z, above);
  return bin_below + (u - cdf[below]) / denom * (bin_above - bin_below);
}

// ---- merge_samples

// Strict ascending order of depths with NaN after every number (all NaNs equal), as torch.sort.
template <typename T>
NGK_HOST_DEVICE bool depth_less(T x, T y) {
  return (x < y) | ((y != y) & (x == x));  // bitwise: no branches
}

// Position of b[j] in the stable ascending order of b (Sb values): the number of b[k] that sort
// before it, ties broken by index. Branchless counting (Sb^2 comparisons per ray, which the
// compiler vectorizes): for the short fine list this beats an insertion sort's data-dependent
// shifts, and it is always a permutation of 0 .. Sb-1, NaNs included.
template <typename T>
NGK_HOST_DEVICE int64_t stable_rank(const T* b, int64_t Sb, int64_t j) {
  const T v = b[j];
  int rank = 0;
  for (int64_t k = 0; k < j; ++k) rank += !depth_less(v, b[k]);       // b[k] <= v
  for (int64_t k = j + 1; k < Sb; ++k) rank += depth_less(b[k], v);  // b[k] < v
  return rank;
}

// Merges one ray. a (Sa, sorted), b (Sb, any order) -> out_depths (Sa + Sb, ascending) and
// out_index (Sa + Sb): the source of each slot, i < Sa for a[i], Sa + j for b[j]. b is sorted
// (stable_rank) into the tails out_*[Sa ..], which are the scratch of the two-pointer merge: it
// writes slot i + j only after reading tail entry j, and never beyond it.
template <typename T, typename I>
NGK_HOST_DEVICE void merge_ray(const T* a, int64_t Sa, const T* b, int64_t Sb, T* out_depths,
                               I* out_index) {
  T* tail_depths = out_depths + Sa;
  I* tail_index = out_index + Sa;
  for (int64_t j = 0; j < Sb; ++j) {
    const int64_t p = stable_rank(b, Sb, j);
    tail_depths[p] = b[j];
    tail_index[p] = static_cast<I>(Sa + j);
  }
  int64_t i = 0, j = 0;
  for (int64_t o = 0; o < Sa + Sb; ++o) {
    if (i < Sa && (j == Sb || !depth_less(tail_depths[j], a[i]))) {  // ties: a first
      out_depths[o] = a[i];
      out_index[o] = static_cast<I>(i);
      ++i;
    } else {
      const T d = tail_depths[j];
      const I src = tail_index[j];
      out_depths[o] = d;
      out_index[o] = src;
      ++j;
    }
  }
}

// Decodes the source of a merged slot: row `row` of list b when from_b, else of list a. False
// for an index outside [0, Sa + Sb) (the caller then reads and writes nothing).
template <typename I>
NGK_HOST_DEVICE bool decode_source(I index, int64_t Sa, int64_t Sb, bool& from_b, int64_t& row) {
  const int64_t k = static_cast<int64_t>(index);
  from_b = k >= Sa;
  row = from_b ? k - Sa : k;
  return k >= 0 && k < Sa + Sb;
}

}  // namespace importance
}  // namespace nerfgan_kernels
