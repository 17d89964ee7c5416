// triplane_sample: bilinear tri-plane feature sampling with EG3D's semantics.
//
//   planes (Np, 3, C, H, W), coords (Nc, M, 3), Np == Nc or one of them 1 (N = max(Np, Nc))
//   reduce "none" -> (N, 3, M, C); "mean" / "sum" over the three planes -> (N, M, C)
//
// The device-specific kernels take planes in channels-last layout (Np, 3, H, W, C), contiguous,
// so that one texel's channels are one contiguous run.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <tuple>
#include <vector>

#include "triplane_math.h"

namespace nerfgan_kernels {

// Public entry points (device dispatch and argument checks).
at::Tensor triplane_sample_forward(const at::Tensor& planes, const at::Tensor& coords,
                                   double box_warp, const std::string& reduce);

// Returns (grad_planes (Np, 3, C, H, W), grad_coords (Nc, M, 3)); an empty (0,) tensor where the
// corresponding need_* flag is false.
std::tuple<at::Tensor, at::Tensor> triplane_sample_backward(const at::Tensor& grad_out,
                                                            const at::Tensor& planes,
                                                            const at::Tensor& coords,
                                                            double box_warp,
                                                            const std::string& reduce,
                                                            bool need_planes, bool need_coords);

namespace triplane {

Reduce parse_reduce(const std::string& reduce);

// Sizes of a call; planes_cl is (Np, 3, H, W, C), coords (Nc, M, 3).
inline Sizes sizes_of(const at::Tensor& planes_cl, const at::Tensor& coords) {
  Sizes s;
  s.Np = planes_cl.size(0);
  s.Nc = coords.size(0);
  s.N = s.Np == 1 ? s.Nc : s.Np;  // broadcast rule checked by the dispatcher
  s.M = coords.size(1);
  s.H = planes_cl.size(2);
  s.W = planes_cl.size(3);
  s.C = planes_cl.size(4);
  return s;
}

// Device kernels. planes_cl: (Np, 3, H, W, C) contiguous; coords: (Nc, M, 3) contiguous.
at::Tensor forward_cpu(const at::Tensor& planes_cl, const at::Tensor& coords, double scale,
                       Reduce reduce);
// grad_out contiguous. Returns {grad_planes_cl (Np, 3, H, W, C), grad_coords (Nc, M, 3)}.
std::vector<at::Tensor> backward_cpu(const at::Tensor& grad_out, const at::Tensor& planes_cl,
                                     const at::Tensor& coords, double scale, Reduce reduce,
                                     bool need_planes, bool need_coords);
// grad_planes_cl (Np, 3, H, W, C) in the accumulation type += the planes' gradient of
// sampling coords with upstream grad_out (deterministic for a fixed thread count).
void accumulate_planes_grad_cpu(const at::Tensor& grad_out, const at::Tensor& planes_cl,
                                const at::Tensor& coords, double scale, Reduce reduce,
                                at::Tensor& grad_planes_cl);

#ifdef NERFGAN_KERNELS_WITH_CUDA
at::Tensor forward_cuda(const at::Tensor& planes_cl, const at::Tensor& coords, double scale,
                        Reduce reduce);
std::vector<at::Tensor> backward_cuda(const at::Tensor& grad_out, const at::Tensor& planes_cl,
                                      const at::Tensor& coords, double scale, Reduce reduce,
                                      bool need_planes, bool need_coords);
#endif

}  // namespace triplane
}  // namespace nerfgan_kernels
