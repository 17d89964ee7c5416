// One CPU kernel source, three instruction sets (see capability.h).
//
// A kernel file includes every header it needs first, then opens NGK_CPU_BEGIN, defines its
// kernels in namespace NGK_CPU_NS, and closes NGK_CPU_END. It is compiled once per capability
// by a one-line unit that defines NGK_CPU_AVX2 or NGK_CPU_AVX512 (or nothing, the baseline)
// before including it. Only code between BEGIN and END gets the wider instructions, and it lives
// in its own namespace, so the baseline build never links an AVX function by accident (no
// inline function of a header is compiled with -mavx*: there is no such flag). The shared math
// headers are NGK_HOST_DEVICE (always inlined), so they are compiled into each kernel with the
// kernel's instruction set.
#pragma once

#if defined(NGK_CPU_AVX512)
#define NGK_CPU_NS avx512
// (_Pragma takes one string literal: the target list stays on one line.)
#define NGK_CPU_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi,bmi2,f16c,prefer-vector-width=512\")")
#define NGK_CPU_END _Pragma("GCC pop_options")
#elif defined(NGK_CPU_AVX2)
#define NGK_CPU_NS avx2
#define NGK_CPU_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,bmi,bmi2,f16c\")")
#define NGK_CPU_END _Pragma("GCC pop_options")
#else
#define NGK_CPU_NS baseline
#define NGK_CPU_BEGIN
#define NGK_CPU_END
#endif

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define NGK_CPU_HAS_MXCSR 1
#endif

namespace nerfgan_kernels {
namespace cpu {
// Channels handled per register block: 64 bytes (one AVX-512 register, two AVX2 registers).
template <typename acc_t>
constexpr int64_t kBlock = 64 / sizeof(acc_t);

// Starts loading the C values at row into the cache. GCC treats __builtin_prefetch as free of
// side effects, so a function that only prefetches is found "pure" and its calls are deleted
// (the triplane backward's prefetches were, until the empty volatile asm below marked the
// prefetch as a side effect).
// `step` bytes apart: 64 touches every cache line; 128 one line of each aligned pair, whose
// other line the L2's adjacent-line prefetcher brings (half the prefetches, so a burst of them
// waits less for free fill buffers).
template <typename T>
inline __attribute__((always_inline)) void prefetch_row(const T* row, int64_t C,
                                                        int64_t step = 64) {
  const char* bytes = reinterpret_cast<const char*>(row);
  const int64_t size = C * static_cast<int64_t>(sizeof(T));
  for (int64_t b = 0; b < size; b += step) __builtin_prefetch(bytes + b);
  __asm__ __volatile__("" : : "r"(bytes));
}

// While alive, this thread's float arithmetic flushes denormal results to zero and reads
// denormal inputs as zero (x86's MXCSR FTZ + DAZ; a no-op elsewhere); the previous mode comes
// back on destruction. Gradients of rays through empty space are ~1e-40, and each operation on a
// denormal costs a microcode assist of ~100 cycles: render_triplane's backward on the default
// generator ran 3.6x slower without it. Values below 1.2e-38 (float) become 0.
class FlushDenormals {
 public:
#if defined(NGK_CPU_HAS_MXCSR)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~FlushDenormals() { _mm_setcsr(saved_); }
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
#if defined(NGK_CPU_HAS_MXCSR)
  unsigned int saved_;
#endif
};
}  // namespace cpu
}  // namespace nerfgan_kernels
