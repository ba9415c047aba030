// Comparisons to rounding for results that may take different floating-point paths: another BLAS kernel family
// (OPENBLAS_CORETYPE), another blocking of a gemm (chunk sizes: a column's value depends on whether it falls in a
// full register tile or an edge tile), another summation order, another thread count. Such results agree to a few
// units in the last place of the quantity's magnitude, not bit for bit, so they are compared as
//   |a - ref| <= atol + rtol * scale,
// with scale the magnitude of the quantity (max |ref| over a vector unless given). Bitwise equality (EXPECT_EQ) is
// kept only where both sides take the same path on the same backend with the same thread count.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <cmath>      // std::fabs, std::isfinite
#include <cstdio>     // std::snprintf
#include <vector>     // std::vector

namespace pinntk::testing {

// The default relative tolerance for "the same number by another kernel or summation order". The quantities
// compared are short dot products (lengths <= 3N) pushed through a few tanh layers: the observed differences
// between the OpenBLAS Haswell, SkylakeX, Zen, Sandybridge and Prescott kernels, chunkings and thread counts are
// below 2e-15 of the magnitude (about 10 ulps); 1e-13 leaves a factor 50 for other shapes and libraries, while
// any indexing or formula error shows at 1e-3 or more.
inline constexpr double kRoundingRtol = 1e-13;

inline double max_abs(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s = std::max(s, std::fabs(x));
  return s;
}

// |a - ref| <= atol + rtol * scale (scale >= 0: the magnitude of the quantity, e.g. |ref| or a norm).
inline ::testing::AssertionResult near(double a, double ref, double scale, double rtol = kRoundingRtol,
                                       double atol = 0.0) {
  const double tol = atol + rtol * scale;
  if (std::isfinite(a) && std::fabs(a - ref) <= tol) return ::testing::AssertionSuccess();
  char buf[256];
  std::snprintf(buf, sizeof buf, "%.17g vs %.17g: |diff| = %.3g > %.3g (atol %.3g + rtol %.3g * scale %.3g)", a, ref,
                std::fabs(a - ref), tol, atol, rtol, scale);
  return ::testing::AssertionFailure() << buf;
}

// Every a[i] within atol + rtol * scale of ref[i], scale = max |ref| unless given (norm-wise: the rounding of a
// small entry is that of the large ones it was computed with). Reports the count and the worst entry.
inline ::testing::AssertionResult all_near(const std::vector<double>& a, const std::vector<double>& ref,
                                           double rtol = kRoundingRtol, double atol = 0.0, double scale = -1.0) {
  if (a.size() != ref.size())
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << ref.size();
  if (scale < 0.0) scale = max_abs(ref);
  const double tol = atol + rtol * scale;
  size_t bad = 0, worst = 0;
  double worst_diff = -1.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::isfinite(a[i]) ? std::fabs(a[i] - ref[i]) : INFINITY;
    if (!(d <= tol)) ++bad;
    if (!(d <= worst_diff)) {  // NaN-safe: a NaN entry is the worst
      worst_diff = d;
      worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%zu of %zu entries differ; worst [%zu]: %.17g vs %.17g, |diff| = %.3g > %.3g (atol %.3g + rtol %.3g "
                "* scale %.3g)",
                bad, a.size(), worst, a[worst], ref[worst], worst_diff, tol, atol, rtol, scale);
  return ::testing::AssertionFailure() << buf;
}

}  // namespace pinntk::testing
