// CUDA kernels of composite: one thread per ray; the math is composite_math.h.
// float16/bfloat16 features are marched in float32; depths, depth and weights are float32.
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <type_traits>

#include "../common/cuda_launch.h"
#include "composite.h"
#include "composite_math.h"

namespace nerfgan_kernels {
namespace composite {
namespace {

constexpr int kThreads = 128;

int blocks_for(int64_t rays) {
  const int64_t blocks = (rays + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535 * 8)));
}

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ c, const scalar_t* __restrict__ sigma,
                               const acc_t* __restrict__ t, const acc_t* __restrict__ range,
                               int64_t rays, int64_t S, int64_t C, bool white_back, acc_t t_min,
                               acc_t alpha_min, acc_t* __restrict__ rgb_acc,
                               scalar_t* __restrict__ rgb, acc_t* __restrict__ depth,
                               acc_t* __restrict__ weights, acc_t* __restrict__ stats) {
  const acc_t lo = range[0], hi = range[1];
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rays;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    march_forward<scalar_t, acc_t>(c + r * S * C, sigma + r * S, t + r * S, S, C, lo, hi,
                                   white_back, t_min, alpha_min, rgb_acc + r * C, rgb + r * C,
                                   depth + r, weights + r * (S - 1), stats + r * 3);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const scalar_t* __restrict__ g_rgb,
                                const acc_t* __restrict__ g_depth,
                                const acc_t* __restrict__ g_weights,
                                const scalar_t* __restrict__ c, const scalar_t* __restrict__ sigma,
                                const acc_t* __restrict__ t, const acc_t* __restrict__ range,
                                const acc_t* __restrict__ stats, int64_t rays, int64_t S,
                                int64_t C, bool white_back, acc_t t_min, acc_t alpha_min,
                                scalar_t* __restrict__ grad_c, scalar_t* __restrict__ grad_sigma) {
  const acc_t lo = range[0], hi = range[1];
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rays;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    march_backward<scalar_t, acc_t>(g_rgb + r * C, g_depth + r, g_weights + r * (S - 1),
                                    c + r * S * C, sigma + r * S, t + r * S, S, C, lo, hi,
                                    white_back, t_min, alpha_min, stats + r * 3,
                                    grad_c + r * S * C, grad_sigma + r * S);
  }
}

}  // namespace

void forward_cuda(const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths,
                  const at::Tensor& depth_range, Options opt, at::Tensor& rgb, at::Tensor& depth,
                  at::Tensor& weights, at::Tensor& stats) {
  const DeviceGuard guard(colors.device());
  const int64_t rays = colors.size(0) * colors.size(1), S = colors.size(2), C = colors.size(3);
  if (rays == 0) return;
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, colors.scalar_type(), "composite_forward_cuda", [&] {
        using acc_t = at::acc_type<scalar_t, true>;
        // rgb is accumulated in acc_t: in the output itself when the types agree.
        at::Tensor acc;
        acc_t* acc_p = nullptr;
        if constexpr (std::is_same_v<scalar_t, acc_t>) {
          acc_p = rgb.data_ptr<acc_t>();
        } else {
          acc = at::empty(rgb.sizes(), rgb.options().dtype(stats.scalar_type()));
          acc_p = acc.data_ptr<acc_t>();
        }
        launch<forward_kernel<scalar_t, acc_t>>(
            blocks_for(rays), kThreads, 0, stream, colors.data_ptr<scalar_t>(),
            densities.data_ptr<scalar_t>(),
            depths.data_ptr<acc_t>(), depth_range.data_ptr<acc_t>(), rays, S, C,
            opt.white_back, static_cast<acc_t>(opt.t_min), static_cast<acc_t>(opt.alpha_min),
            acc_p, rgb.data_ptr<scalar_t>(), depth.data_ptr<acc_t>(),
            weights.data_ptr<acc_t>(), stats.data_ptr<acc_t>());
      });
}

void backward_cuda(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                   const at::Tensor& grad_weights, const at::Tensor& colors,
                   const at::Tensor& densities, const at::Tensor& depths,
                   const at::Tensor& depth_range, const at::Tensor& stats, Options opt,
                   at::Tensor& grad_colors, at::Tensor& grad_densities) {
  const DeviceGuard guard(colors.device());
  const int64_t rays = colors.size(0) * colors.size(1), S = colors.size(2), C = colors.size(3);
  if (rays == 0) return;
  const auto stream = current_stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, colors.scalar_type(), "composite_backward_cuda", [&] {
        using acc_t = at::acc_type<scalar_t, true>;
        launch<backward_kernel<scalar_t, acc_t>>(
            blocks_for(rays), kThreads, 0, stream, grad_rgb.data_ptr<scalar_t>(),
            grad_depth.data_ptr<acc_t>(), grad_weights.data_ptr<acc_t>(),
            colors.data_ptr<scalar_t>(), densities.data_ptr<scalar_t>(),
            depths.data_ptr<acc_t>(), depth_range.data_ptr<acc_t>(), stats.data_ptr<acc_t>(),
            rays, S, C,
            opt.white_back, static_cast<acc_t>(opt.t_min), static_cast<acc_t>(opt.alpha_min),
            grad_colors.data_ptr<scalar_t>(), grad_densities.data_ptr<scalar_t>());
      });
}

}  // namespace composite
}  // namespace nerfgan_kernels
