// Host entry points of the emulator's own test kernels (tests/emulated/test_kernels.cu). They
// check the emulator itself: barriers, shared memory, warp collectives and its error reports.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace ngk_emu_tests {

// out[i] = in[block start + (block - 1 - t)] through shared memory: exact with the barrier, wrong
// without it (the planted missing __syncthreads). in float32 (n,); n need not fill the blocks.
at::Tensor block_reverse(const at::Tensor& in, int64_t block, bool sync);

// Per warp (block-major; partial warps included) of the in-range threads, for in float32 (n,):
// {sum (warps,) by __shfl_down_sync, inclusive scan (n,) by __shfl_up_sync,
//  ballot of in > 0 (warps,) int64, broadcast (n,) of lane 0 of each 8-lane segment}.
std::vector<at::Tensor> warp_ops(const at::Tensor& in, int64_t block);

// Launches an empty kernel (the emulator checks CUDA's launch limits).
void launch_noop(int64_t grid, int64_t block, int64_t dynamic_shared);

// Kernels the emulator must refuse: half the threads exit before __syncthreads; a full-warp
// shuffle in a block of 48 threads.
void divergent_barrier();
void full_mask_in_partial_warp();

// Reads shared memory before any thread wrote it: NaN (the emulator's fill), (block,) float32.
at::Tensor uninitialized_shared(int64_t block);

// Writes tile[threadIdx.x + offset] of a 32-float tile: offset 32 overflows it (AddressSanitizer
// reports it in the sanitized build). Returns the tile (32,) as the threads read it back.
at::Tensor shared_write(int64_t offset);

}  // namespace ngk_emu_tests
