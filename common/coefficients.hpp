// Coefficients and exact solutions of the paper's problems (DESIGN.md section 1), shared by both backends.
#pragma once

#include <cmath>  // sin, cos

#include "common/hd.hpp"  // PINNTK_HD

namespace pinntk {

// A value and its first two derivatives.
template <class T>
struct Jet3 {
  T v, d1, d2;
};

// Darcy coefficient a(y) = 1 / (2.1 + 2 sin(omega y)) and a'(y) (Sec. 4.1 and 4.2, DESIGN.md section 1).
template <class T>
PINNTK_HD inline T darcy_a(T y, T omega) {
  return T(1) / (T(2.1) + T(2) * sin(omega * y));
}
template <class T>
PINNTK_HD inline T darcy_a_prime(T y, T omega) {
  const T d = T(2.1) + T(2) * sin(omega * y);
  return -T(2) * omega * cos(omega * y) / (d * d);
}

// Paper eq. (4): u* = sin x + sin(5x)/25 + sin(15x)/225 + sin(55x)/3025.
template <class T>
PINNTK_HD inline Jet3<T> exact_sines(T x) {
  const T k[4] = {T(1), T(5), T(15), T(55)};
  Jet3<T> r{T(0), T(0), T(0)};
  for (int i = 0; i < 4; ++i) {
    const T inv = T(1) / (k[i] * k[i]);
    r.v += sin(k[i] * x) * inv;
    r.d1 += cos(k[i] * x) / k[i];
    r.d2 -= sin(k[i] * x);
  }
  return r;
}

// Paper eq. (26): u* = sin(2x) + eps sin(x/eps) - (eps/pi) sin(pi/eps) x.
template <class T>
PINNTK_HD inline Jet3<T> exact_twoscale(T x, T eps) {
  const T pi = T(3.14159265358979323846);
  const T c = eps / pi * sin(pi / eps);
  return Jet3<T>{sin(T(2) * x) + eps * sin(x / eps) - c * x, T(2) * cos(T(2) * x) + cos(x / eps) - c,
                 -T(4) * sin(T(2) * x) - sin(x / eps) / eps};
}

}  // namespace pinntk
