// EG3D's OSG decoder on one point, forward and backward, shared by the fused renderer's kernels
// (see nerfgan_kernels/ops/fused.py for the tensor contract).
//
//   f (C)   mean of the three planes' bilinear features
//   pre (H) = W0 f + b0,  h = softplus(pre)   (torch's softplus: linear above 20)
//   out (O) = W1 h + b1,  O = 1 + F
//   density = out[0] (raw), colour_i = sigmoid(out[1 + i]) * (1 + 2e-3) - 1e-3
//
// The weights are passed transposed, w0t (C, H) and w1t (H, O), so that the inner loops run over
// contiguous hidden units / outputs (what the CPU compiler vectorises). The activation of the
// hidden layer is the caller's (the CPU kernels use cpu/vmath.h's vectorised exp / log1p).
#pragma once

#include <cstdint>

#include "../common/macros.h"

namespace nerfgan_kernels {
namespace decoder {

constexpr double kColorScale = 1.0 + 2e-3;  // MipNeRF's widened sigmoid
constexpr double kColorShift = 1e-3;

// y (n_out) = bias + x (n_in) @ wt (n_in, n_out)
template <typename T>
NGK_HOST_DEVICE void linear(const T* x, const T* wt, const T* bias, int64_t n_in, int64_t n_out,
                            T* y) {
  for (int64_t o = 0; o < n_out; ++o) y[o] = bias[o];
  for (int64_t i = 0; i < n_in; ++i) {
    const T xi = x[i];
    const T* row = wt + i * n_out;
    for (int64_t o = 0; o < n_out; ++o) y[o] += xi * row[o];
  }
}

// Backward of linear: gx (n_in) = wt @ gy (overwritten); gwt (n_in, n_out) += x^T gy and
// gbias (n_out) += gy (accumulated).
template <typename T>
NGK_HOST_DEVICE void linear_backward(const T* x, const T* wt, const T* gy, int64_t n_in,
                                     int64_t n_out, T* gx, T* gwt, T* gbias) {
  for (int64_t o = 0; o < n_out; ++o) gbias[o] += gy[o];
  for (int64_t i = 0; i < n_in; ++i) {
    const T* row = wt + i * n_out;
    T* grow = gwt + i * n_out;
    const T xi = x[i];
    T acc = 0;
    for (int64_t o = 0; o < n_out; ++o) {
      acc += row[o] * gy[o];
      grow[o] += xi * gy[o];
    }
    gx[i] = acc;
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
