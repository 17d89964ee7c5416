// Large CPU outputs on transparent huge pages.
//
// A kernel that writes a fresh (rays x samples x C) tensor once pays more for the page faults
// of the new memory than for its own arithmetic: on a 4 KiB-page VM a 200 MB output costs
// ~80-125 ms of faults, ~25 ms on 2 MiB pages. empty_output asks the kernel for huge pages
// (madvise MADV_HUGEPAGE, what torch's allocator does under THP_MEM_ALLOC_ENABLE=1) for the
// 2 MiB-aligned interior of outputs of at least kHugePageMinBytes; elsewhere it is at::empty.
// NERFGAN_KERNELS_HUGE_PAGES=0 turns it off (benchmarks report both).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>

namespace nerfgan_kernels {
namespace cpu {

constexpr int64_t kHugePageMinBytes = int64_t(8) << 20;

// at::empty(sizes, options), on huge pages where the OS offers them (CPU tensors only).
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options);

}  // namespace cpu
}  // namespace nerfgan_kernels
