#include "host/ntk.hpp"

#include <algorithm>   // std::sort, std::min
#include <cmath>       // std::sqrt, std::isfinite
#include <functional>  // std::greater

#include "common/errors.hpp"  // UsageError, NumericalError

namespace pinntk {
namespace {

constexpr const char* kNotFinite =
    "the NTK's entries are not finite in double precision (the problem's coefficients or the network's weights are "
    "too large)";

}  // namespace

double ntk_memory_bytes(long n, long p, bool save_matrices) {
  const double dn = static_cast<double>(n), dp = static_cast<double>(p), m = std::min(dn, dp);
  // J, D^1/2 J and its row blocks, D J (n > p); the largest Gram, its copy for the eigensolver, two p x p Grams.
  double doubles = 4.0 * dn * dp + 2.0 * m * m + (n > p ? 2.0 * dp * dp : 0.0) + 8.0 * dn;
  if (save_matrices) doubles += dn * dp + 2.0 * dn * dn;  // J.npy's bytes, K and K.npy's bytes
  return 8.0 * doubles;
}

NtkScaling parse_ntk_scaling(const std::string& text) {
  if (text == "lemma") return NtkScaling::Lemma;
  if (text == "none") return NtkScaling::None;
  throw UsageError("--ntk-scaling: unknown value '" + text + "' (known: lemma, none)");
}

const char* ntk_scaling_name(NtkScaling s) { return s == NtkScaling::Lemma ? "lemma" : "none"; }

std::vector<double> ntk_row_weights(const PointSet& pts, NtkScaling scaling) {
  if (scaling == NtkScaling::None) return std::vector<double>(pts.size(), 1.0);
  return pts.w;
}

SymmetricSpectrum gram_spectrum(Backend& be, const std::vector<double>& Ah, int n, int p) {
  SymmetricSpectrum out;
  out.eigenvalues.assign(n, 0.0);
  if (n == 0) return out;
  out.gram_trick = n > p;
  const int m = out.gram_trick ? p : n;
  std::vector<double> G(static_cast<size_t>(m) * m);
  if (out.gram_trick) {
    be.gram_cols(Ah, n, p, G);
  } else {
    be.gram_rows(Ah, n, p, G);
  }
  // Sums of up to N^2 squares: accumulate in long double so that the norm is correct to the last digit (cuBLAS
  // nrm2 on the GPU is too; a plain double sum of 10^6 terms drifts by about 1e-13).
  long double f2 = 0.0L;
  for (double g : G) f2 += static_cast<long double>(g) * g;
  out.frobenius = static_cast<double>(std::sqrt(f2));
  if (!std::isfinite(out.frobenius)) throw NumericalError(kNotFinite);
  be.symmetric_eigenvalues(G, m, span<double>(out.eigenvalues.data(), m));
  // With the Gram trick the n - p zeros follow the computed eigenvalues, the smallest of which may be rounding
  // noise below zero: sort the whole list.
  std::sort(out.eigenvalues.begin(), out.eigenvalues.end(), std::greater<double>());
  return out;
}

double frobenius_weighted(Backend& be, const std::vector<double>& J, const std::vector<double>& d, int n, int p) {
  long double f2 = 0.0L;  // see gram_spectrum
  if (n <= p) {
    std::vector<double> G(static_cast<size_t>(n) * n);
    be.gram_rows(J, n, p, G);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        const double k = G[static_cast<size_t>(i) * n + j] * d[j];
        f2 += static_cast<long double>(k) * k;
      }
  } else {
    std::vector<double> DJ(J.size()), B(static_cast<size_t>(p) * p), C(static_cast<size_t>(p) * p);
    for (int i = 0; i < n; ++i)
      for (int q = 0; q < p; ++q) DJ[static_cast<size_t>(i) * p + q] = d[i] * J[static_cast<size_t>(i) * p + q];
    be.gram_cols(DJ, n, p, B);
    be.gram_cols(J, n, p, C);
    for (size_t q = 0; q < B.size(); ++q) f2 += static_cast<long double>(B[q]) * C[q];
  }
  const double f = static_cast<double>(std::sqrt(f2 > 0.0L ? f2 : 0.0L));
  if (!std::isfinite(f)) throw NumericalError(kNotFinite);
  return f;
}

NtkResult analyze_ntk(Backend& be, const Mlp& net, const PointSet& pts, NtkScaling scaling, bool keep_jacobian) {
  NtkResult r = be.ntk(net, pts, ntk_row_weights(pts, scaling), keep_jacobian);
  // Every backend's numbers pass here, the device's too.
  const bool finite = std::isfinite(r.frobenius_K) && std::isfinite(r.frobenius_Kuu) && std::isfinite(r.frobenius_Kbb);
  for (const auto* e : {&r.spectrum_K, &r.spectrum_Kuu, &r.spectrum_Kbb, &r.residuals})
    for (double v : *e)
      if (!finite || !std::isfinite(v)) throw NumericalError(kNotFinite);
  return r;
}

}  // namespace pinntk
