// The emulator's own test kernels (only built by tests/emulated/build.py). Written as ordinary
// CUDA against csrc/common/cuda_launch.h, like the project's kernels.
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>

#include <algorithm>

#include "common/cuda_launch.h"
#include "test_kernels.h"

namespace ngk_emu_tests {
namespace {

using nerfgan_kernels::launch;

constexpr int kMaxBlock = 1024;

enum Sync : int { kNone = 0, kBlock = 1, kWarp = 2 };

template <int kSync>
__global__ void block_reverse_kernel(const float* __restrict__ in, float* __restrict__ out,
                                     int64_t n) {
  NGK_SHARED(float, tile, kMaxBlock);
  const int64_t start = static_cast<int64_t>(blockIdx.x) * blockDim.x;
  const int t = threadIdx.x;
  tile[t] = start + t < n ? in[start + t] : 0.0f;
  if (kSync == kBlock) __syncthreads();
  if (kSync == kWarp) __syncwarp();  // enough for a block of one warp only
  if (start + t < n) out[start + t] = tile[blockDim.x - 1 - t];
}

// 2-D blocks of 64 threads (two full warps), n a multiple of 64: per thread (linear id t),
// out[0] the block reversed through dynamic shared memory, out[1] __shfl_xor_sync(lane ^ 8) at
// width 8 (lanes 8..15 of each 16 read lanes 0..7; lanes 0..7 keep their value), out[2] the
// warp's __any_sync(x > 1), out[3] its __all_sync(x > -3).
__global__ void block2d_kernel(const float* __restrict__ in, float* __restrict__ out, int64_t n) {
  NGK_DYNAMIC_SHARED(float, buffer);
  const int t = threadIdx.x + blockDim.x * threadIdx.y;
  const int threads = blockDim.x * blockDim.y;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * threads + t;
  const float x = in[i];
  buffer[t] = x;
  __syncthreads();
  out[i] = buffer[threads - 1 - t];
  out[n + i] = __shfl_xor_sync(0xffffffffu, x, 8, 8);
  out[2 * n + i] = static_cast<float>(__any_sync(0xffffffffu, x > 1.0f));
  out[3 * n + i] = static_cast<float>(__all_sync(0xffffffffu, x > -3.0f));
}

__global__ void warp_ops_kernel(const float* __restrict__ in, float* __restrict__ sums,
                                float* __restrict__ scan, int64_t* __restrict__ ballots,
                                float* __restrict__ broadcast, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % 32;
  const int64_t warp_start = i - lane;
  const int64_t lanes_in_block = std::min<int64_t>(32, blockDim.x - (threadIdx.x - lane));
  const int in_range = static_cast<int>(std::clamp<int64_t>(n - warp_start, 0, lanes_in_block));
  if (lane >= in_range) return;  // exited lanes are outside every mask below
  const unsigned mask = in_range == 32 ? 0xffffffffu : ((1u << in_range) - 1u);
  const float v = in[i];
  float sum = v;
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_down_sync(mask, sum, offset);
    if (lane + offset < in_range) sum += other;
  }
  float prefix = v;
  for (int offset = 1; offset < 32; offset *= 2) {
    const float other = __shfl_up_sync(mask, prefix, offset);
    if (lane >= offset) prefix += other;
  }
  const unsigned positive = __ballot_sync(mask, v > 0.0f);
  const int segment_mask_lanes = std::min(8, in_range - (lane & ~7));
  const unsigned segment = ((segment_mask_lanes == 8 ? 0xffu : ((1u << segment_mask_lanes) - 1u))
                            << (lane & ~7)) & mask;
  broadcast[i] = __shfl_sync(segment, v, 0, 8);
  scan[i] = prefix;
  if (lane == 0) {
    const int64_t warp = blockIdx.x * ((blockDim.x + 31) / 32) + threadIdx.x / 32;
    sums[warp] = sum;
    ballots[warp] = positive;
  }
}

__global__ void noop_kernel() {}

__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x % 2 == 1) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// Lanes 12..15 of every 16 exit; the rest vote with a full mask (exited and absent lanes do not
// take part, as in CUDA).
__global__ void full_mask_kernel(int64_t* out) {
  if (threadIdx.x % 16 >= 12) return;
  out[threadIdx.x] = __ballot_sync(0xffffffffu, 1);
}

__global__ void warp_waits_for_barrier_kernel(float* out) {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    __syncwarp();
  }
  out[threadIdx.x] = 1.0f;
}

__global__ void uninitialized_shared_kernel(float* out) {
  NGK_SHARED(float, tile, kMaxBlock);
  out[threadIdx.x] = tile[threadIdx.x];
  __syncthreads();
  tile[threadIdx.x] = 0.0f;
}

__global__ void shared_write_kernel(float* out, int offset) {
  NGK_SHARED(float, tile, 32);
  tile[threadIdx.x] = 0.0f;
  __syncthreads();
  float* row = tile;  // through a pointer: ASan (not UBSan's bounds check) must see an overflow
  row[threadIdx.x + offset] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = tile[threadIdx.x];
}

}  // namespace

at::Tensor block_reverse(const at::Tensor& in, int64_t block, int64_t sync) {
  TORCH_CHECK(in.dim() == 1 && in.scalar_type() == at::kFloat, "in must be float32 (n,)");
  TORCH_CHECK(block >= 1 && block <= kMaxBlock, "block must be in [1, 1024]");
  const at::Tensor x = in.contiguous();
  at::Tensor out = at::empty_like(x);
  const int64_t n = x.numel();
  if (n == 0) return out;
  const auto blocks = static_cast<unsigned>((n + block - 1) / block);
  const auto threads = static_cast<unsigned>(block);
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  TORCH_CHECK(sync >= kNone && sync <= kWarp, "sync must be 0 (none), 1 (block) or 2 (warp)");
  if (sync == kBlock) {
    launch<block_reverse_kernel<kBlock>>(blocks, threads, 0, nullptr, src, dst, n);
  } else if (sync == kWarp) {
    launch<block_reverse_kernel<kWarp>>(blocks, threads, 0, nullptr, src, dst, n);
  } else {
    launch<block_reverse_kernel<kNone>>(blocks, threads, 0, nullptr, src, dst, n);
  }
  return out;
}

at::Tensor block2d(const at::Tensor& in) {
  TORCH_CHECK(in.dim() == 1 && in.scalar_type() == at::kFloat && in.numel() % 64 == 0,
              "in must be float32 (n,), n a multiple of 64");
  const at::Tensor x = in.contiguous();
  const int64_t n = x.numel();
  at::Tensor out = at::empty({4, n}, x.options());
  if (n == 0) return out;
  launch<block2d_kernel>(static_cast<unsigned>(n / 64), dim3(16, 4), 64 * sizeof(float), nullptr,
                         x.data_ptr<float>(), out.data_ptr<float>(), n);
  return out;
}

std::vector<at::Tensor> warp_ops(const at::Tensor& in, int64_t block) {
  TORCH_CHECK(in.dim() == 1 && in.scalar_type() == at::kFloat && in.numel() > 0,
              "in must be float32 (n,), n >= 1");
  TORCH_CHECK(block >= 1 && block <= kMaxBlock, "block must be in [1, 1024]");
  const at::Tensor x = in.contiguous();
  const int64_t n = x.numel();
  const int64_t blocks = (n + block - 1) / block;
  const int64_t slots = blocks * ((block + 31) / 32);  // warps, partial ones included
  at::Tensor sums = at::full({slots}, NAN, x.options());
  at::Tensor ballots = at::full({slots}, -1, x.options().dtype(at::kLong));
  at::Tensor scan = at::empty_like(x), broadcast = at::empty_like(x);
  launch<warp_ops_kernel>(static_cast<unsigned>(blocks), static_cast<unsigned>(block), 0, nullptr,
                          x.data_ptr<float>(), sums.data_ptr<float>(), scan.data_ptr<float>(),
                          ballots.data_ptr<int64_t>(), broadcast.data_ptr<float>(), n);
  return {sums, scan, ballots, broadcast};
}

void launch_noop(int64_t grid, int64_t block, int64_t dynamic_shared) {
  launch<noop_kernel>(static_cast<unsigned>(grid), static_cast<unsigned>(block),
                      static_cast<size_t>(dynamic_shared), nullptr);
}

void divergent_barrier() {
  at::Tensor out = at::zeros({64}, at::kFloat);
  launch<divergent_barrier_kernel>(1, 64, 0, nullptr, out.data_ptr<float>());
}

at::Tensor full_mask_in_partial_warp() {
  at::Tensor out = at::zeros({48}, at::kLong);
  launch<full_mask_kernel>(1, 48, 0, nullptr, out.data_ptr<int64_t>());
  return out;
}

void warp_waits_for_barrier() {
  at::Tensor out = at::zeros({32}, at::kFloat);
  launch<warp_waits_for_barrier_kernel>(1, 32, 0, nullptr, out.data_ptr<float>());
}

at::Tensor uninitialized_shared(int64_t block) {
  at::Tensor out = at::zeros({block}, at::kFloat);
  launch<uninitialized_shared_kernel>(1, static_cast<unsigned>(block), 0, nullptr,
                                      out.data_ptr<float>());
  return out;
}

at::Tensor shared_write(int64_t offset) {
  at::Tensor out = at::zeros({32}, at::kFloat);
  launch<shared_write_kernel>(1, 32, 0, nullptr, out.data_ptr<float>(), static_cast<int>(offset));
  return out;
}

}  // namespace ngk_emu_tests
