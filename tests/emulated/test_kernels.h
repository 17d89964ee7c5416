// Host entry points of the emulator's own test kernels (tests/emulated/test_kernels.cu). They
// check the emulator itself: barriers, shared memory, warp collectives and its error reports.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace ngk_emu_tests {

// out[i] = in[block start + (block - 1 - t)] through shared memory; sync 1: __syncthreads between
// the write and the read (exact), 0: none (the planted missing barrier), 2: __syncwarp only
// (exact for one-warp blocks only). in float32 (n,); n need not fill the blocks.
at::Tensor block_reverse(const at::Tensor& in, int64_t block, int64_t sync);

// 2-D blocks (16 x 4), dynamic shared memory, __shfl_xor_sync at width 8, __any_sync, __all_sync:
// (4, n) float32, see block2d_kernel. in float32 (n,), n a multiple of 64.
at::Tensor block2d(const at::Tensor& in);

// Per warp (block-major; partial warps included) of the in-range threads, for in float32 (n,):
// {sum (warps,) by __shfl_down_sync, inclusive scan (n,) by __shfl_up_sync,
//  ballot of in > 0 (warps,) int64, broadcast (n,) of lane 0 of each 8-lane segment}.
std::vector<at::Tensor> warp_ops(const at::Tensor& in, int64_t block);

// Launches an empty kernel (the emulator checks CUDA's launch limits).
void launch_noop(int64_t grid, int64_t block, int64_t dynamic_shared);

// A full-mask __ballot_sync in a block of 48 threads whose lanes 12..15 of every 16 exited:
// (48,) int64, the ballot per thread (0 where it exited).
at::Tensor full_mask_in_partial_warp();

// Kernels the emulator must refuse: half the threads exit before __syncthreads; a __syncwarp
// whose mask names a lane that waits in __syncthreads.
void divergent_barrier();
void warp_waits_for_barrier();

// Reads shared memory before any thread wrote it: NaN (the emulator's fill), (block,) float32.
at::Tensor uninitialized_shared(int64_t block);

// Writes tile[threadIdx.x + offset] of a 32-float tile: offset 32 overflows it (AddressSanitizer
// reports it in the sanitized build). Returns the tile (32,) as the threads read it back.
at::Tensor shared_write(int64_t offset);

}  // namespace ngk_emu_tests
