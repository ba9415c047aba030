// NTK analysis (paper Lemma 3.1, DESIGN.md section 3): residual Jacobian, the kernel K = J J^T D, its blocks,
// Frobenius norms and spectra.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "host/backend.hpp"  // Backend

namespace pinntk {

// Lemma: D = diag(loss weights), i.e. 1/Nc on collocation rows and lambda/Nb on boundary rows (Lemma 3.1).
// None: D = I, the unscaled J J^T that Section 4.1 plots.
enum class NtkScaling { Lemma, None };
NtkScaling parse_ntk_scaling(const std::string& text);
const char* ntk_scaling_name(NtkScaling s);

// Frobenius norm and descending spectrum of Ah Ah^T for row-major Ah (n x p): by syrk on the n x n form when
// n <= p, else from the p x p Gram Ah^T Ah, whose nonzero eigenvalues and Frobenius norm are the same; the
// remaining n - p eigenvalues are zero (DESIGN.md section 3). Eigenvalues in descending order; NumericalError when
// the Gram is not finite in double precision.
struct SymmetricSpectrum {
  std::vector<double> eigenvalues;
  double frobenius = 0.0;
  bool gram_trick = false;
};
SymmetricSpectrum gram_spectrum(Backend& be, const std::vector<double>& Ah, int n, int p);

// ||J J^T D||_F for row-major J (n x p): directly from the n x n product when n <= p, else from the identity
// ||J J^T D||_F^2 = <J^T D^2 J, J^T J>_F on two p x p Grams.
double frobenius_weighted(Backend& be, const std::vector<double>& J, const std::vector<double>& d, int n, int p);

// Peak host memory in bytes of be.ntk on n rows and p parameters (and of writing J and K when save_matrices).
double ntk_memory_bytes(long n, long p, bool save_matrices);

// be.ntk with the row weights of the chosen scaling; NumericalError when the kernel is not finite.
NtkResult analyze_ntk(Backend& be, const Mlp& net, const PointSet& pts, NtkScaling scaling, bool keep_jacobian);

// The row weights D of the chosen scaling.
std::vector<double> ntk_row_weights(const PointSet& pts, NtkScaling scaling);

}  // namespace pinntk
