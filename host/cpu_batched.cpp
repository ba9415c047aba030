#include "host/cpu_batched.hpp"

#include <cblas.h>  // cblas_dgemm, cblas_dgemv

#include <algorithm>  // std::fill, std::min, std::swap
#include <cmath>      // std::tanh

#include "common/mlp_math.hpp"  // first_layer_jet, first_layer_weight_adjoint, tanh_jet, tanh_jet_adjoint
#include "common/residual.hpp"  // row_residual, row_loss

namespace pinntk {

double batched_loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad,
                             BatchedWorkspace& ws, int chunk) {
  const std::vector<int>& d = net.layers;
  const int nl = static_cast<int>(d.size()) - 1;  // weight layers
  const int n = pts.size();
  const double* theta = net.theta.data();
  std::vector<int> woff(nl + 1, 0);
  for (int l = 1; l <= nl; ++l) woff[l] = weight_offset(d, l);
  int maxw = 1;
  for (int w : d) maxw = std::max(maxw, w);
  std::fill(grad.begin(), grad.end(), 0.0);
  ws.h.resize(nl);
  ws.zd.resize(nl);
  double loss = 0.0;

  for (int k0 = 0; k0 < n; k0 += chunk) {
    const int B = std::min(chunk, n - k0), B3 = 3 * B;
    for (int l = 1; l < nl; ++l) {
      ws.h[l].resize(static_cast<size_t>(d[l]) * B3);
      ws.zd[l].resize(static_cast<size_t>(d[l]) * 2 * B);
    }
    ws.a.resize(static_cast<size_t>(maxw) * B3);
    ws.b.resize(static_cast<size_t>(maxw) * B3);
    ws.u.resize(B3);
    const double* x = pts.x.data() + k0;

    // Forward, layer 1 (first_layer_jet): z = w x + b, z' = w, z'' = 0.
    {
      const int d1 = d[1];
      const double* W = theta + woff[1];
      double *H = ws.h[1].data(), *Z = ws.zd[1].data();
      for (int i = 0; i < d1; ++i)
        for (int p = 0; p < B; ++p) {
          double t, h1, h2;
          first_layer_jet(W[i], W[d1 + i], x[p], t, h1, h2);
          H[i * B3 + p] = t;
          H[i * B3 + B + p] = h1;
          H[i * B3 + 2 * B + p] = h2;
          Z[i * 2 * B + p] = W[i];
          Z[i * 2 * B + B + p] = 0.0;
        }
    }
    // Hidden layers: [z; z'; z''] = W [h; h'; h''] for all points in one product, then the tanh jets.
    for (int l = 2; l < nl; ++l) {
      const int din = d[l - 1], dout = d[l];
      const double* W = theta + woff[l];
      const double* b = W + dout * din;
      double* Zfull = ws.a.data();  // dout x 3B scratch
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dout, B3, din, 1.0, W, din, ws.h[l - 1].data(), B3, 0.0,
                  Zfull, B3);
      double *H = ws.h[l].data(), *Z = ws.zd[l].data();
      for (int i = 0; i < dout; ++i)
        for (int p = 0; p < B; ++p) {
          const double zp = Zfull[i * B3 + B + p], zpp = Zfull[i * B3 + 2 * B + p];
          const double t = std::tanh(Zfull[i * B3 + p] + b[i]);
          double h1, h2;
          tanh_jet(t, zp, zpp, h1, h2);
          H[i * B3 + p] = t;
          H[i * B3 + B + p] = h1;
          H[i * B3 + 2 * B + p] = h2;
          Z[i * 2 * B + p] = zp;
          Z[i * 2 * B + B + p] = zpp;
        }
    }
    // Output layer: [u; u'; u''] = w^T [h; h'; h''] + [b; 0; 0].
    const int dl = d[nl - 1];
    const double* Wo = theta + woff[nl];
    double* U = ws.u.data();
    cblas_dgemv(CblasRowMajor, CblasTrans, dl, B3, 1.0, ws.h[nl - 1].data(), B3, Wo, 1, 0.0, U, 1);
    // Residuals and the output adjoints seeded with w r (gamma, beta, alpha), DESIGN.md section 2.
    double* A = ws.a.data();
    for (int p = 0; p < B; ++p) {
      const int k = k0 + p;
      const double u = U[p] + Wo[dl], u1 = U[B + p], u2 = U[2 * B + p];
      const double rk = row_residual(pts.alpha[k], pts.beta[k], pts.gamma[k], pts.f[k], u, u1, u2);
      r[k] = rk;
      loss += row_loss(pts.w[k], rk);
      const double c = pts.w[k] * rk;
      A[p] = c * pts.gamma[k];
      A[B + p] = c * pts.beta[k];
      A[2 * B + p] = c * pts.alpha[k];
    }
    // Reverse: layer l's parameters from its adjoints A (dout x 3B), then the adjoints of layer l-1.
    for (int l = nl; l >= 1; --l) {
      const int din = d[l - 1], dout = d[l];
      const double* W = theta + woff[l];
      double* gW = grad.data() + woff[l];
      double* gb = gW + dout * din;
      for (int i = 0; i < dout; ++i) {
        double s = 0.0;
        for (int p = 0; p < B; ++p) s += A[i * B3 + p];
        gb[i] += s;
      }
      if (l == 1) {
        for (int i = 0; i < dout; ++i) {
          double s = 0.0;
          for (int p = 0; p < B; ++p) s += first_layer_weight_adjoint(A[i * B3 + p], A[i * B3 + B + p], x[p]);
          gW[i] += s;
        }
        break;
      }
      // dRho/dW = sum over points and channels of A_c h_c^T: one product over the 3B columns. The contractions of
      // the hidden layers are dgemm here, not the per-point weight_adjoint and jet_dot of common/mlp_math.hpp:
      // sharing those would give up the BLAS products (and their summation order).
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, dout, din, B3, 1.0, A, B3, ws.h[l - 1].data(), B3, 1.0, gW,
                  din);
      double* HB = ws.b.data();
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, din, B3, dout, 1.0, W, din, A, B3, 0.0, HB, B3);
      const double *H = ws.h[l - 1].data(), *Z = ws.zd[l - 1].data();
      for (int j = 0; j < din; ++j)
        for (int p = 0; p < B; ++p) {
          double zb0, zb1, zb2;
          tanh_jet_adjoint(H[j * B3 + p], Z[j * 2 * B + p], Z[j * 2 * B + B + p], HB[j * B3 + p], HB[j * B3 + B + p],
                           HB[j * B3 + 2 * B + p], zb0, zb1, zb2);
          HB[j * B3 + p] = zb0;
          HB[j * B3 + B + p] = zb1;
          HB[j * B3 + 2 * B + p] = zb2;
        }
      std::swap(ws.a, ws.b);
      A = ws.a.data();
    }
    // ws.a / ws.b may have been swapped an odd number of times: both are full-size, nothing else to restore.
  }
  return loss;
}

}  // namespace pinntk
