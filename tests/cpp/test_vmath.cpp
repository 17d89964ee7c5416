// cpu/vmath.h against the double-precision std:: functions: every float of the documented
// ranges is visited on a dense grid (4096 steps per power of two, plus the range ends), once from
// a baseline loop and once from a loop compiled for AVX2 + FMA (the vectorised code the kernels
// run; skipped where the CPU lacks it). Fails on an error above 2 ulp or a wrong special value.
#include <cmath>
#include <cstdio>
#include <vector>

#include "cpu/vmath.h"

namespace {

using nerfgan_kernels::cpu::vexp;
using nerfgan_kernels::cpu::vlog1p;

// Distance in units of the last place of the (float-rounded) reference.
double ulps(float value, double ref) {
  const float r = static_cast<float>(ref);
  const double ulp = std::nextafter(std::fabs(r), INFINITY) - std::fabs(r);
  return std::fabs(static_cast<double>(value) - ref) / (ulp > 0 ? ulp : 1e-45);
}

std::vector<float> grid(float lo, float hi) {
  std::vector<float> xs;
  for (float x = lo; x < hi;) {
    xs.push_back(x);
    const float step = std::fmax(std::fabs(x) / 4096.0f, 1e-9f);
    x = std::nextafter(x + step, INFINITY);
  }
  xs.push_back(hi);
  return xs;
}

void baseline_loop(const float* x, float* e, float* l, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) {
    e[i] = vexp(x[i]);
    l[i] = vlog1p(x[i] < 0 ? -x[i] : x[i]);
  }
}

__attribute__((target("avx2,fma"))) void avx2_loop(const float* x, float* e, float* l, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) {
    e[i] = vexp(x[i]);
    l[i] = vlog1p(x[i] < 0 ? -x[i] : x[i]);
  }
}

int check(const char* name, void (*loop)(const float*, float*, float*, int)) {
  int failures = 0;
  const std::vector<float> ex = grid(-87.33f, 88.0f);
  std::vector<float> e(ex.size()), l(ex.size());
  loop(ex.data(), e.data(), l.data(), static_cast<int>(ex.size()));
  double worst = 0;
  for (size_t i = 0; i < ex.size(); ++i) worst = std::fmax(worst, ulps(e[i], std::exp(double(ex[i]))));
  std::printf("%s exp: %zu points, max %.2f ulp\n", name, ex.size(), worst);
  failures += worst > 2.0;

  std::vector<float> ly = grid(0.0f, 1.0f);
  for (float& y : ly) y = std::fmin(y, 1.0f);
  std::vector<float> e2(ly.size()), l2(ly.size());
  loop(ly.data(), e2.data(), l2.data(), static_cast<int>(ly.size()));
  worst = 0;
  for (size_t i = 0; i < ly.size(); ++i) worst = std::fmax(worst, ulps(l2[i], std::log1p(double(ly[i]))));
  std::printf("%s log1p: %zu points, max %.2f ulp\n", name, ly.size(), worst);
  failures += worst > 2.0;

  const float specials[] = {-1000.0f, -88.0f, 89.0f, 1000.0f, NAN, -INFINITY, INFINITY, 0.0f};
  const float expected[] = {0.0f, 0.0f, INFINITY, INFINITY, NAN, 0.0f, INFINITY, 1.0f};
  float se[8], sl[8];
  loop(specials, se, sl, 8);
  for (int i = 0; i < 8; ++i) {
    const bool ok = std::isnan(expected[i]) ? std::isnan(se[i]) : se[i] == expected[i];
    if (!ok) {
      std::printf("%s exp(%g) = %g, expected %g\n", name, specials[i], se[i], expected[i]);
      ++failures;
    }
  }
  if (!std::isnan(sl[4]) || sl[7] != 0.0f) {
    std::printf("%s log1p(nan) = %g, log1p(0) = %g\n", name, sl[4], sl[7]);
    ++failures;
  }
  return failures;
}

}  // namespace

int main() {
  int failures = check("baseline", baseline_loop);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    failures += check("avx2", avx2_loop);
  } else {
    std::printf("avx2: not supported by this CPU, skipped\n");
  }
  std::printf(failures ? "FAILED\n" : "OK\n");
  return failures ? 1 : 0;
}
