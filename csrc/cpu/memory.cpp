#include "memory.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace nerfgan_kernels {
namespace cpu {
namespace {

bool huge_pages_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("NERFGAN_KERNELS_HUGE_PAGES");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

}  // namespace

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor out = at::empty(sizes, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const int64_t bytes = out.numel() * static_cast<int64_t>(out.element_size());
  if (out.is_cpu() && bytes >= kHugePageMinBytes && huge_pages_enabled()) {
    constexpr uintptr_t kPage = uintptr_t(2) << 20;
    const auto begin = reinterpret_cast<uintptr_t>(out.data_ptr());
    const uintptr_t first = (begin + kPage - 1) & ~(kPage - 1);
    const uintptr_t last = (begin + static_cast<uintptr_t>(bytes)) & ~(kPage - 1);
    // Advice only: a kernel without THP answers EINVAL and the pages stay small.
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
  return out;
}

}  // namespace cpu
}  // namespace nerfgan_kernels
