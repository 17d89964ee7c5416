#include "capability.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>

namespace nerfgan_kernels {
namespace cpu {

Capability best_supported() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  // __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512 registers.
  static const Capability best = [] {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma")) {
      return Capability::kAvx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Capability::kAvx2;
    return Capability::kDefault;
  }();
  return best;
#else
  return Capability::kDefault;
#endif
}

Capability current() {
  const Capability best = best_supported();
  const char* value = std::getenv(kCapabilityEnv);
  if (value == nullptr || value[0] == '\0') return best;
  Capability wanted;
  if (std::strcmp(value, "default") == 0) {
    wanted = Capability::kDefault;
  } else if (std::strcmp(value, "avx2") == 0) {
    wanted = Capability::kAvx2;
  } else if (std::strcmp(value, "avx512") == 0) {
    wanted = Capability::kAvx512;
  } else {
    TORCH_CHECK(false, kCapabilityEnv, " must be one of default, avx2, avx512, got \"", value,
                "\"");
  }
  TORCH_CHECK(static_cast<int>(wanted) <= static_cast<int>(best), kCapabilityEnv, "=", value,
              " but this CPU supports at most ", name(best));
  return wanted;
}

const char* name(Capability c) {
  switch (c) {
    case Capability::kAvx2:
      return "avx2";
    case Capability::kAvx512:
      return "avx512";
    default:
      return "default";
  }
}

}  // namespace cpu
}  // namespace nerfgan_kernels
