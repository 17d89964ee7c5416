// decode_triplane: EG3D's OSG decoder at arbitrary points, the tri-plane gather fused in (no
// gathered features are stored; the backward recomputes each point). Contract in
// nerfgan_kernels/ops/fused.py.
//
//   planes (Np, 3, C, H, W); weight0 (Hd, C), bias0 (Hd), weight1 (O, Hd), bias1 (O), O = 1 + F;
//   coords (Nc, M, 3); Np, Nc equal or 1, N = the larger. One dtype (float32 or float64).
//   Returns features (N, M, F) = sigmoid(out[1:]) * (1 + 2e-3) - 1e-3 and density (N, M, 1) =
//   out[0] (raw).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace nerfgan_kernels {

std::tuple<at::Tensor, at::Tensor> decode_triplane_forward(
    const at::Tensor& planes, const at::Tensor& weight0, const at::Tensor& bias0,
    const at::Tensor& weight1, const at::Tensor& bias1, const at::Tensor& coords,
    double box_warp);

// Gradients to planes (Np, 3, C, H, W) and the four decoder tensors; an undefined upstream
// gradient is zeros. No gradient flows to coords.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> decode_triplane_backward(
    const at::Tensor& grad_features, const at::Tensor& grad_density, const at::Tensor& planes,
    const at::Tensor& weight0, const at::Tensor& bias0, const at::Tensor& weight1,
    const at::Tensor& bias1, const at::Tensor& coords, double box_warp);

namespace fused {

// The point problem as contiguous tensors: planes channels-last (Np, 3, H, W, C), the decoder as
// in render_triplane's Problem (w0 (Hd, C), w0t (C, Hd), b0, w1 (O, Hd), w1t (Hd, O), b1),
// coords (Nc, M, 3).
struct Points {
  at::Tensor planes_cl, w0, w0t, b0, w1, w1t, b1, coords;
  int64_t Np, Nc, N, M, C, H, W, Hd, O;
  double scale;
};

// features (N, M, F), density (N, M, 1).
void decode_forward_cpu(const Points& p, at::Tensor& features, at::Tensor& density);

// grad_planes_cl (Np, 3, H, W, C) and the transposed decoder gradients g_w0t (C, Hd), g_b0,
// g_w1t (Hd, O), g_b1: zeros on entry, accumulated.
void decode_backward_cpu(const Points& p, const at::Tensor& grad_features,
                         const at::Tensor& grad_density, at::Tensor& grad_planes_cl,
                         at::Tensor& g_w0t, at::Tensor& g_b0, at::Tensor& g_w1t,
                         at::Tensor& g_b1);

#ifdef NERFGAN_KERNELS_WITH_CUDA
// decode_triplane_cuda.cu: the same contracts for tensors on one CUDA device.
void decode_forward_cuda(const Points& p, at::Tensor& features, at::Tensor& density);

void decode_backward_cuda(const Points& p, const at::Tensor& grad_features,
                          const at::Tensor& grad_density, at::Tensor& grad_planes_cl,
                          at::Tensor& g_w0t, at::Tensor& g_b0, at::Tensor& g_w1t,
                          at::Tensor& g_b1);
#endif

}  // namespace fused
}  // namespace nerfgan_kernels
