// Runtime choice of the CPU kernels' instruction set.
//
// Every CPU kernel is compiled three times (see simd_begin.h): a baseline build with the
// compiler's default flags (x86-64: SSE2), an AVX2 + FMA build and an AVX-512 build. The best one
// the CPU supports runs, unless NERFGAN_KERNELS_CPU_CAPABILITY=default|avx2|avx512 forces one
// (read at every call, so tests can switch paths; forcing a path the CPU lacks is an error).
#pragma once

namespace nerfgan_kernels {
namespace cpu {

enum class Capability : int { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };

constexpr const char* kCapabilityEnv = "NERFGAN_KERNELS_CPU_CAPABILITY";

// The best instruction set this CPU (and OS) supports.
Capability best_supported();

// The instruction set the CPU kernels use now: the environment's choice, else best_supported().
Capability current();

const char* name(Capability c);

}  // namespace cpu
}  // namespace nerfgan_kernels
