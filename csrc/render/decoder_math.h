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
  for (int64_t i = 0; i < n_in; ++i) accumulate(x + i, n_in, gy, n_out, n, n_out, gwt + i * n_out);
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
