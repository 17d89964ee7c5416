// render_triplane: the fused tri-plane renderer (gather + EG3D's OSG decoder + the mip march per
// ray, recomputed in the backward). Contract in nerfgan_kernels/ops/fused.py.
//
//   planes (Np, 3, C, H, W); weight0 (Hd, C), bias0 (Hd), weight1 (O, Hd), bias1 (O), O = 1 + F;
//   ray_origins, ray_directions (Nr, R, 3); depths (Nd, R, S, 1) sorted per ray; depth_range (2,).
//   Np, Nr, Nd equal or 1; N = the largest. One dtype for all (float32 or float64).
//   known_densities (optional, (N or 1, R, S, 1)): raw densities already known (a coarse pass's,
//   merged into these samples), NaN where unknown. They must be what the decoder gives there: the
//   CPU kernel takes a known density instead of decoding and decodes the sample only if its
//   colour gets a weight; the CUDA kernels decode every sample (the same result).
//   Returns rgb (N, R, F), depth (N, R, 1), weights (N, R, S-1, 1), weights_sum (N, R, 1) and
//   stats (N, R, 2 + S) for the backward: [sum w, sum w * t_mid, the raw density of each sample]
//   (NaN for samples the march never reached). The densities let the backward march without
//   decoding and recompute only the samples that a kept interval touches.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace nerfgan_kernels {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> render_triplane_forward(
    const at::Tensor& planes, const at::Tensor& weight0, const at::Tensor& bias0,
    const at::Tensor& weight1, const at::Tensor& bias1, const at::Tensor& ray_origins,
    const at::Tensor& ray_directions, const at::Tensor& depths, const at::Tensor& depth_range,
    double box_warp, bool white_back, double t_min, double alpha_min,
    const std::optional<at::Tensor>& known_densities);

// Gradients to planes (Np, 3, C, H, W), in channels-last memory (a permuted (Np, 3, H, W, C)
// tensor, the kernels' layout), and the four decoder tensors; undefined upstream gradients are
// zeros. No gradient flows to rays or depths.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> render_triplane_backward(
    const at::Tensor& grad_rgb, const at::Tensor& grad_depth, const at::Tensor& grad_weights,
    const at::Tensor& grad_weights_sum, const at::Tensor& planes, const at::Tensor& weight0,
    const at::Tensor& bias0, const at::Tensor& weight1, const at::Tensor& bias1,
    const at::Tensor& ray_origins, const at::Tensor& ray_directions, const at::Tensor& depths,
    const at::Tensor& depth_range, const at::Tensor& stats, double box_warp, bool white_back,
    double t_min, double alpha_min);

namespace fused {

// Largest decoder the kernels take (nerfgan_kernels/ops/fused.py's MAX_HIDDEN / MAX_OUTPUT): the
// CUDA kernels size their per-thread arrays with them.
constexpr int64_t kMaxHidden = 128;
constexpr int64_t kMaxOutput = 64;  // F; the decoder has O = 1 + F outputs

// Checks planes (N, 3, C, H, W) and the decoder's tensors (shapes, the limits above, one dtype
// and device) for the op named op (render_triplane, decode_triplane).
void check_planes_and_decoder(const char* op, const at::Tensor& planes, const at::Tensor& weight0,
                              const at::Tensor& bias0, const at::Tensor& weight1,
                              const at::Tensor& bias1);

// Everything the CPU and CUDA kernels read, as contiguous tensors: planes channels-last
// (Np, 3, H, W, C), the decoder's weights w0 (Hd, C), w1 (O, Hd) and transposed w0t (C, Hd),
// w1t (Hd, O), origins / directions (Nr, R, 3), depths (Nd, R, S).
struct Problem {
  at::Tensor planes_cl, w0, w0t, b0, w1, w1t, b1, origins, directions, depths;
  at::Tensor known;  // (Nk, R, S) known densities, or undefined
  int64_t Np, Nr, Nd, Nk, N, R, S, C, H, W, Hd, O;
  double scale, lo, hi, t_min, alpha_min;
  bool white_back;
};

void forward_cpu(const Problem& p, at::Tensor& rgb, at::Tensor& depth, at::Tensor& weights,
                 at::Tensor& weights_sum, at::Tensor& stats);

// grad_planes_cl (Np, 3, H, W, C) and the transposed decoder gradients g_w0t (C, Hd),
// g_w1t (Hd, O), g_b0, g_b1: zeros on entry, accumulated.
void backward_cpu(const Problem& p, const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                  const at::Tensor& grad_weights, const at::Tensor& grad_weights_sum,
                  const at::Tensor& stats, at::Tensor& grad_planes_cl, at::Tensor& g_w0t,
                  at::Tensor& g_b0, at::Tensor& g_w1t, at::Tensor& g_b1);

#ifdef NERFGAN_KERNELS_WITH_CUDA
// The CUDA kernels (render_triplane_cuda.cu): the same contract as forward_cpu / backward_cpu,
// for a Problem whose tensors are on one CUDA device.
void forward_cuda(const Problem& p, at::Tensor& rgb, at::Tensor& depth, at::Tensor& weights,
                  at::Tensor& weights_sum, at::Tensor& stats);

void backward_cuda(const Problem& p, const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                   const at::Tensor& grad_weights, const at::Tensor& grad_weights_sum,
                   const at::Tensor& stats, at::Tensor& grad_planes_cl, at::Tensor& g_w0t,
                   at::Tensor& g_b0, at::Tensor& g_w1t, at::Tensor& g_b1);
#endif

}  // namespace fused
}  // namespace nerfgan_kernels
