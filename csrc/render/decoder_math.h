// EG3D's OSG decoder on one point, forward and backward, shared by the fused renderer's kernels
// (see nerfgan_kernels/ops/fused.py for the tensor contract).
//
//   f (C)   mean of the three planes' bilinear features
//   pre (H) = W0 f + b0,  h = softplus(pre)   (torch's softplus: linear above 20)
//   out (O) = W1 h + b1,  O = 1 + F
//   density = out[0] (raw), colour_i = sigmoid(out[1 + i]) * (1 + 2e-3) - 1e-3
//
// The forward takes the weights transposed, w0t (C, H) and w1t (H, O), so that the inner loops
// run over contiguous hidden units / outputs (what the CPU compiler vectorises); the backward
// takes them as they are, w0 (H, C) and w1 (O, H), for the same reason. The activation of the
// hidden layer is the caller's (the CPU kernels use cpu/vmath.h's vectorised exp / log1p).
#pragma once

#include <cstdint>
#include <type_traits>

#include "../common/macros.h"

namespace nerfgan_kernels {
namespace decoder {

constexpr double kColorScale = 1.0 + 2e-3;  // MipNeRF's widened sigmoid
constexpr double kColorShift = 1e-3;

// out[0, width) += sum_k x[k * sx] * rows[k * sr + (0, width)], k < n: the one loop nest of
// the decoder's forward and backward. The outputs go in register blocks of 64, 32 or 8 (sizes
// known to the compiler, so the block's accumulators stay in registers over the whole k loop
// instead of a load-add-store chain through memory), then one by one.
#if defined(__GNUC__) && !defined(__CUDACC__) && !defined(NGK_EMULATE_CUDA)
// The CPU build's float blocks of 16k outputs: GCC keeps a T[B] accumulator array on the stack
// (one store per k, latency-bound); k vectors of 16 floats stay in registers.
typedef float Float16 __attribute__((vector_size(64), aligned(4)));

template <int64_t B>
inline __attribute__((always_inline)) void accumulate_block_f16(const float* x, int64_t sx, const float* rows, int64_t sr,
                                 int64_t n, float* out) {
  constexpr int64_t V = B / 16;
  Float16 acc[V];
  for (int64_t v = 0; v < V; ++v) acc[v] = Float16{};
  for (int64_t k = 0; k < n; ++k) {
    const float xk = x[k * sx];
    const Float16* row = reinterpret_cast<const Float16*>(rows + k * sr);
    for (int64_t v = 0; v < V; ++v) acc[v] += xk * row[v];
  }
  Float16* o = reinterpret_cast<Float16*>(out);
  for (int64_t v = 0; v < V; ++v) o[v] += acc[v];
}
#define NGK_DECODER_VECTOR_BLOCKS 1
#endif

template <int64_t B, typename T>
NGK_HOST_DEVICE void accumulate_block(const T* x, int64_t sx, const T* rows, int64_t sr,
                                      int64_t n, T* out) {
#if defined(NGK_DECODER_VECTOR_BLOCKS)
  if constexpr (B % 16 == 0 && std::is_same_v<T, float>) {
    accumulate_block_f16<B>(x, sx, rows, sr, n, out);
    return;
  }
#endif
  T acc[B];
  for (int64_t o = 0; o < B; ++o) acc[o] = T(0);
  for (int64_t k = 0; k < n; ++k) {
    const T xk = x[k * sx];
    const T* row = rows + k * sr;
    for (int64_t o = 0; o < B; ++o) acc[o] += xk * row[o];
  }
  for (int64_t o = 0; o < B; ++o) out[o] += acc[o];
}

template <typename T>
NGK_HOST_DEVICE void accumulate(const T* x, int64_t sx, const T* rows, int64_t sr, int64_t n,
                                int64_t width, T* out) {
  int64_t o0 = 0;
  for (; width - o0 >= 64; o0 += 64) accumulate_block<64>(x, sx, rows + o0, sr, n, out + o0);
  for (; width - o0 >= 32; o0 += 32) accumulate_block<32>(x, sx, rows + o0, sr, n, out + o0);
  for (; width - o0 >= 8; o0 += 8) accumulate_block<8>(x, sx, rows + o0, sr, n, out + o0);
  for (; o0 < width; ++o0) accumulate_block<1>(x, sx, rows + o0, sr, n, out + o0);
}

// accumulate for P points at once: out[p][0, width) += sum_k x[p][k * sx] rows[k * sr + (0,
// width)], p < P. Every row of weights is loaded once for the P points and the P x (width / 16)
// accumulators are independent chains, so the loop runs at the FMA units' throughput where one
// point's few chains wait on the FMA latency. Each output is the same sum in the same order as
// accumulate's, so the results are identical.
#if defined(NGK_DECODER_VECTOR_BLOCKS)
template <int P, int64_t B>
inline __attribute__((always_inline)) void accumulate_points_block_f16(
    const float* const* x, int64_t sx, const float* rows, int64_t sr, int64_t n, int64_t o0,
    float* const* out) {
  constexpr int V = B / 16;
  Float16 acc[P][V];
  for (int p = 0; p < P; ++p) {
    for (int v = 0; v < V; ++v) acc[p][v] = Float16{};
  }
  for (int64_t k = 0; k < n; ++k) {
    const Float16* row = reinterpret_cast<const Float16*>(rows + k * sr + o0);
    Float16 r[V];
    for (int v = 0; v < V; ++v) r[v] = row[v];
    for (int p = 0; p < P; ++p) {
      const float xk = x[p][k * sx];
      for (int v = 0; v < V; ++v) acc[p][v] += xk * r[v];
    }
  }
  for (int p = 0; p < P; ++p) {
    Float16* o = reinterpret_cast<Float16*>(out[p] + o0);
    for (int v = 0; v < V; ++v) o[v] += acc[p][v];
  }
}

// The last (width mod 16) outputs: P scalar chains side by side.
template <int P>
inline __attribute__((always_inline)) void accumulate_points_tail_f16(
    const float* const* x, int64_t sx, const float* rows, int64_t sr, int64_t n, int64_t o0,
    int64_t width, float* const* out) {
  for (int64_t o = o0; o < width; ++o) {
    float acc[P];
    for (int p = 0; p < P; ++p) acc[p] = 0.0f;
    for (int64_t k = 0; k < n; ++k) {
      const float w = rows[k * sr + o];
      for (int p = 0; p < P; ++p) acc[p] += x[p][k * sx] * w;
    }
    for (int p = 0; p < P; ++p) out[p][o] += acc[p];
  }
}
#endif

template <int P, typename T>
NGK_HOST_DEVICE void accumulate_points(const T* const* x, int64_t sx, const T* rows, int64_t sr,
                                       int64_t n, int64_t width, T* const* out) {
#if defined(NGK_DECODER_VECTOR_BLOCKS)
  if constexpr (std::is_same_v<T, float>) {
    int64_t o0 = 0;
    for (; width - o0 >= 64; o0 += 64) accumulate_points_block_f16<P, 64>(x, sx, rows, sr, n, o0, out);
    for (; width - o0 >= 32; o0 += 32) accumulate_points_block_f16<P, 32>(x, sx, rows, sr, n, o0, out);
    for (; width - o0 >= 16; o0 += 16) accumulate_points_block_f16<P, 16>(x, sx, rows, sr, n, o0, out);
    accumulate_points_tail_f16<P>(x, sx, rows, sr, n, o0, width, out);
    return;
  }
#endif
  for (int p = 0; p < P; ++p) accumulate(x[p], sx, rows, sr, n, width, out[p]);
}

// accumulate_points for count <= kMaxPoints points (the batch's last group may be short).
constexpr int kMaxPoints = 4;

template <typename T>
NGK_HOST_DEVICE void accumulate_points_n(int count, const T* const* x, int64_t sx, const T* rows,
                                         int64_t sr, int64_t n, int64_t width, T* const* out) {
  switch (count) {
    case 4: return accumulate_points<4>(x, sx, rows, sr, n, width, out);
    case 3: return accumulate_points<3>(x, sx, rows, sr, n, width, out);
    case 2: return accumulate_points<2>(x, sx, rows, sr, n, width, out);
    case 1: return accumulate_points<1>(x, sx, rows, sr, n, width, out);
    default: break;
  }
}

// y (n_out) = bias + x (n_in) @ wt (n_in, n_out)
template <typename T>
NGK_HOST_DEVICE void linear(const T* x, const T* wt, const T* bias, int64_t n_in, int64_t n_out,
                            T* y) {
  for (int64_t o = 0; o < n_out; ++o) y[o] = bias[o];
  accumulate(x, 1, wt, n_out, n_in, n_out, y);
}

// sum_k a[k] b[k], k < n. The CPU build sums float in 16 lanes and adds the lanes at the end (an
// ordered sum is a chain of n dependent FMAs: the decoder's density output cost more than its 32
// colours); elsewhere in order.
template <typename T>
NGK_HOST_DEVICE T dot(const T* a, const T* b, int64_t n) {
  int64_t k = 0;
  T sum = 0;
#if defined(NGK_DECODER_VECTOR_BLOCKS)
  if constexpr (std::is_same_v<T, float>) {
    Float16 acc{};
    for (; k + 16 <= n; k += 16) {
      acc += *reinterpret_cast<const Float16*>(a + k) * *reinterpret_cast<const Float16*>(b + k);
    }
    for (int lane = 0; lane < 16; ++lane) sum += acc[lane];
  }
#endif
  for (; k < n; ++k) sum += a[k] * b[k];
  return sum;
}

// Backward of linear, input side: gx (n_in) = w^T gy with w (n_out, n_in) = wt^T.
template <typename T>
NGK_HOST_DEVICE void linear_backward_input(const T* w, const T* gy, int64_t n_in, int64_t n_out,
                                           T* gx) {
  for (int64_t i = 0; i < n_in; ++i) gx[i] = T(0);
  accumulate(gy, 1, w, n_in, n_out, n_in, gx);
}

// Backward of linear, weight side, for n points at once: gwt (n_in, n_out) += x^T gy and
// gbias (n_out) += the sum of gy's rows, with x (n, n_in) and gy (n, n_out). Each gwt entry is
// read and written once per call (the sum over the points runs in registers).
template <typename T>
NGK_HOST_DEVICE void linear_backward_weight(const T* x, const T* gy, int64_t n, int64_t n_in,
                                            int64_t n_out, T* gwt, T* gbias) {
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t o = 0; o < n_out; ++o) gbias[o] += gy[j * n_out + o];
  }
  // kMaxPoints rows of gwt at a time (their x columns are the "points" of accumulate_points).
  for (int64_t i0 = 0; i0 < n_in; i0 += kMaxPoints) {
    const int count = static_cast<int>(n_in - i0 < kMaxPoints ? n_in - i0 : kMaxPoints);
    const T* xs[kMaxPoints];
    T* outs[kMaxPoints];
    for (int p = 0; p < count; ++p) {
      xs[p] = x + i0 + p;
      outs[p] = gwt + (i0 + p) * n_out;
    }
    accumulate_points_n(count, xs, n_in, gy, n_out, n, n_out, outs);
  }
}

// colour from the decoder output, and d colour / d out as a function of the colour's sigmoid s.
template <typename T>
NGK_HOST_DEVICE T color_of(T sigmoid) {
  return sigmoid * T(kColorScale) - T(kColorShift);
}

template <typename T>
NGK_HOST_DEVICE T color_grad(T sigmoid) {
  return T(kColorScale) * sigmoid * (T(1) - sigmoid);
}

}  // namespace decoder
}  // namespace nerfgan_kernels
