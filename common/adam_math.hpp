// One Adam update of one parameter (Kingma & Ba, with bias correction), shared by the host optimizer and the
// CUDA update kernel.
#pragma once

#include <cmath>  // sqrt

#include "common/hd.hpp"  // PINNTK_HD

namespace pinntk {

struct AdamParams {
  double beta1, beta2, eps;
};

// c1 = 1 - beta1^t and c2 = 1 - beta2^t are the bias corrections of step t (t = 1, 2, ...).
template <class Real>
PINNTK_HD inline void adam_update(Real& theta, Real& m, Real& v, Real g, double lr, AdamParams a, double c1,
                                  double c2) {
  m = Real(a.beta1) * m + Real(1.0 - a.beta1) * g;
  v = Real(a.beta2) * v + Real(1.0 - a.beta2) * g * g;
  theta -= Real(lr * (double(m) / c1) / (sqrt(double(v) / c2) + a.eps));
}

}  // namespace pinntk
