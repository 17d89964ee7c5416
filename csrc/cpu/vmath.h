// Branch-free exp and log1p for float that the compiler vectorises inside `#pragma omp simd`
// loops (glibc's expf / log1pf are scalar calls, ~15 ns each, and the march needs three per
// interval). The double overloads are the std:: functions, so float64 results stay the
// reference's. Always inlined: each CPU kernel compiles them with its own instruction set
// (cpu/simd.h).
//
// Accuracy (float, tests/cpp/test_vmath.cpp against the double std:: functions on a dense grid,
// baseline and AVX2 + FMA builds): exp <= 1.2 ulp on [-87.33, 88], log1p <= 0.8 ulp on [0, 1]
// (the test fails above 2). Ranges: exp(x) is 0 below -87.33 (std: a denormal or 0) and +inf
// above 88; log1p is meant for y in [0, 1] (the softplus argument exp(-|x|)). NaN propagates.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../common/macros.h"

namespace nerfgan_kernels {
namespace cpu {

NGK_HOST_DEVICE float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof(f));
  return f;
}

NGK_HOST_DEVICE float vexp(float x) {
  constexpr float kLo = -87.33654f, kHi = 88.0f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // Cody-Waite split of ln 2
  constexpr float kRound = 12582912.0f;                              // 1.5 * 2^23
  const float xc = x < kLo ? kLo : (x > kHi ? kHi : x);
  const float n = (xc * kLog2e + kRound) - kRound;  // round to nearest, n in [-126, 127]
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;   // |r| <= ln(2) / 2
  // Taylor to r^7: remainder < r^8 / 8! = 5e-9 relative.
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float y = p * bits_to_float((static_cast<int32_t>(n) + 127) << 23);
  return x != x ? x : (x < kLo ? 0.0f : (x > kHi ? INFINITY : y));
}

// log(1 + y) for y in [0, 1]: u = 1 + y = 2^e * m with m in [sqrt(2)/2, sqrt(2)], log m =
// log(1 + f), f = m - 1 in [-0.293, 0.415], as f - f^2 / 2 + f^3 P(f) with P Cephes' minimax
// polynomial of degree 8 (logf), plus the rounding of 1 + y. No division: the correction's 1 / u
// is 2 - u, exact where the correction matters (u near 1) and an error below 2e-8 elsewhere.
NGK_HOST_DEVICE float vlog1p(float y) {
  constexpr float kSqrt2 = 1.41421356f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  const float u = 1.0f + y;
  const bool big = u > kSqrt2;
  const float m = big ? u * 0.5f : u;
  const float e = big ? 1.0f : 0.0f;
  const float f = m - 1.0f;  // exact (Sterbenz)
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  const float z = f * f;
  const float correction = (y - (u - 1.0f)) * (2.0f - u);  // log1p(y) - log(u) to first order
  const float tail = f * z * p + (e * kLn2Lo + correction) - 0.5f * z;
  return e * kLn2Hi + (f + tail);
}

NGK_HOST_DEVICE double vexp(double x) { return std::exp(x); }
NGK_HOST_DEVICE double vlog1p(double y) { return std::log1p(y); }

// sigmoid(x) from one exp of -|x| (no overflow for any x).
template <typename T>
NGK_HOST_DEVICE T vsigmoid(T x) {
  const T e = vexp(x > T(0) ? -x : x);
  return (x >= T(0) ? T(1) : e) / (T(1) + e);
}

// log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|)) (no overflow for any x).
template <typename T>
NGK_HOST_DEVICE T vsoftplus(T x) {
  return (x > T(0) ? x : T(0)) + vlog1p(vexp(x > T(0) ? -x : x));
}

}  // namespace cpu
}  // namespace nerfgan_kernels
