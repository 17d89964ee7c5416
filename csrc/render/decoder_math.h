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

#include "../common/macros.h"

namespace nerfgan_kernels {
namespace decoder {

constexpr double kColorScale = 1.0 + 2e-3;  // MipNeRF's widened sigmoid
constexpr double kColorShift = 1e-3;

// Outputs per register block: the accumulators of a block stay in registers across the whole
// input loop (8 AVX2 / 4 AVX-512 registers), instead of a load-add-store chain through memory.
constexpr int64_t kBlock = 64;

// y (n_out) = bias + x (n_in) @ wt (n_in, n_out)
template <typename T>
NGK_HOST_DEVICE void linear(const T* x, const T* wt, const T* bias, int64_t n_in, int64_t n_out,
                            T* y) {
  for (int64_t o0 = 0; o0 < n_out; o0 += kBlock) {
    const int64_t width = n_out - o0 < kBlock ? n_out - o0 : kBlock;
    T acc[kBlock];
    for (int64_t o = 0; o < width; ++o) acc[o] = bias[o0 + o];
    for (int64_t i = 0; i < n_in; ++i) {
      const T xi = x[i];
      const T* row = wt + i * n_out + o0;
      if (width == kBlock) {
        for (int64_t o = 0; o < kBlock; ++o) acc[o] += xi * row[o];
      } else {
        for (int64_t o = 0; o < width; ++o) acc[o] += xi * row[o];
      }
    }
    for (int64_t o = 0; o < width; ++o) y[o0 + o] = acc[o];
  }
}

// Backward of linear, input side: gx (n_in) = w^T gy with w (n_out, n_in) = wt^T. The
// accumulators of a block of inputs stay in registers over the loop on outputs.
template <typename T>
NGK_HOST_DEVICE void linear_backward_input(const T* w, const T* gy, int64_t n_in, int64_t n_out,
                                           T* gx) {
  for (int64_t i0 = 0; i0 < n_in; i0 += kBlock) {
    const int64_t width = n_in - i0 < kBlock ? n_in - i0 : kBlock;
    T acc[kBlock];
    for (int64_t i = 0; i < width; ++i) acc[i] = T(0);
    for (int64_t o = 0; o < n_out; ++o) {
      const T g = gy[o];
      const T* row = w + o * n_in + i0;
      if (width == kBlock) {
        for (int64_t i = 0; i < kBlock; ++i) acc[i] += g * row[i];
      } else {
        for (int64_t i = 0; i < width; ++i) acc[i] += g * row[i];
      }
    }
    for (int64_t i = 0; i < width; ++i) gx[i0 + i] = acc[i];
  }
}

// Backward of linear, weight side, for n points at once: gwt (n_in, n_out) += x^T gy and
// gbias (n_out) += sum of gy's rows, with x (n, n_in) and gy (n, n_out). Each gwt entry is
// read and written once per call (the sum over the points runs in registers).
template <typename T>
NGK_HOST_DEVICE void linear_backward_weight(const T* x, const T* gy, int64_t n, int64_t n_in,
                                            int64_t n_out, T* gwt, T* gbias) {
  for (int64_t o0 = 0; o0 < n_out; o0 += kBlock) {
    const int64_t width = n_out - o0 < kBlock ? n_out - o0 : kBlock;
    T acc[kBlock];
    for (int64_t o = 0; o < width; ++o) acc[o] = T(0);
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t o = 0; o < width; ++o) acc[o] += gy[j * n_out + o0 + o];
    }
    for (int64_t o = 0; o < width; ++o) gbias[o0 + o] += acc[o];
    for (int64_t i = 0; i < n_in; ++i) {
      for (int64_t o = 0; o < width; ++o) acc[o] = T(0);
      for (int64_t j = 0; j < n; ++j) {
        const T xi = x[j * n_in + i];
        const T* row = gy + j * n_out + o0;
        if (width == kBlock) {
          for (int64_t o = 0; o < kBlock; ++o) acc[o] += xi * row[o];
        } else {
          for (int64_t o = 0; o < width; ++o) acc[o] += xi * row[o];
        }
      }
      T* grow = gwt + i * n_out + o0;
      for (int64_t o = 0; o < width; ++o) grow[o] += acc[o];
    }
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
