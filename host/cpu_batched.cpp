#include "host/cpu_batched.hpp"

#include <cblas.h>  // cblas_dgemm, cblas_dgemv

#include <algorithm>  // std::fill, std::min, std::swap
#include <cmath>      // std::tanh
#include <stdexcept>  // std::invalid_argument

#include "common/mlp_math.hpp"  // first_layer_jet, first_layer_weight_adjoint, tanh_jet, tanh_jet_adjoint
#include "common/residual.hpp"  // row_residual_nd, row_loss

namespace pinntk {

namespace {

// M: the directions, the coordinate axes (DESIGN.md section 7), a compile-time count so that the elementwise loops
// vectorize as in 1-D; M = 1 is the 1-D pass, operation for operation.
template <int M>
double batched_loss_gradient_m(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad,
                               BatchedWorkspace& ws, int chunk) {
  const std::vector<int>& d = net.layers;
  const int nl = static_cast<int>(d.size()) - 1;  // weight layers
  const int n = pts.size();
  constexpr int m = M;
  constexpr int C = 1 + 2 * m;  // channels: h, then h'_k, then h''_k for every direction k
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
    const int B = std::min(chunk, n - k0), BC = C * B;
    for (int l = 1; l < nl; ++l) {
      ws.h[l].resize(static_cast<size_t>(d[l]) * BC);
      ws.zd[l].resize(static_cast<size_t>(d[l]) * 2 * m * B);
    }
    ws.a.resize(static_cast<size_t>(maxw) * BC);
    ws.b.resize(static_cast<size_t>(maxw) * BC);
    ws.u.resize(BC);
    const double* x = pts.x.data() + static_cast<size_t>(k0) * m;

    // Forward, layer 1 (first_layer_jet in 1-D): z = W x + b, z'_k = W e_k = W_ik, z''_k = 0.
    {
      const int d1 = d[1];
      const double* W = theta + woff[1];
      const double* b1 = W + d1 * m;
      double *H = ws.h[1].data(), *Z = ws.zd[1].data();
      for (int i = 0; i < d1; ++i)
        for (int p = 0; p < B; ++p) {
          double t, h1, h2;
          if constexpr (m == 1) {
            first_layer_jet(W[i], b1[i], x[p], t, h1, h2);
            H[i * BC + p] = t;
            H[i * BC + B + p] = h1;
            H[i * BC + 2 * B + p] = h2;
            Z[i * 2 * B + p] = W[i];
            Z[i * 2 * B + B + p] = 0.0;
          } else {
            double wx = 0.0;
            for (int j = 0; j < m; ++j) wx += W[i * m + j] * x[p * m + j];
            t = std::tanh(wx + b1[i]);
            H[i * BC + p] = t;
            for (int k = 0; k < m; ++k) {
              tanh_jet(t, W[i * m + k], 0.0, h1, h2);
              H[i * BC + (1 + k) * B + p] = h1;
              H[i * BC + (1 + m + k) * B + p] = h2;
              Z[i * 2 * m * B + k * B + p] = W[i * m + k];
              Z[i * 2 * m * B + (m + k) * B + p] = 0.0;
            }
          }
        }
    }
    // Hidden layers: all channels of z = W [h; h'_k; h''_k] for all points in one product, then the tanh jets.
    for (int l = 2; l < nl; ++l) {
      const int din = d[l - 1], dout = d[l];
      const double* W = theta + woff[l];
      const double* b = W + dout * din;
      double* Zfull = ws.a.data();  // dout x CB scratch
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dout, BC, din, 1.0, W, din, ws.h[l - 1].data(), BC, 0.0,
                  Zfull, BC);
      double *H = ws.h[l].data(), *Z = ws.zd[l].data();
      for (int i = 0; i < dout; ++i)
        for (int p = 0; p < B; ++p) {
          const double t = std::tanh(Zfull[i * BC + p] + b[i]);
          H[i * BC + p] = t;
          for (int k = 0; k < m; ++k) {
            const double zp = Zfull[i * BC + (1 + k) * B + p], zpp = Zfull[i * BC + (1 + m + k) * B + p];
            double h1, h2;
            tanh_jet(t, zp, zpp, h1, h2);
            H[i * BC + (1 + k) * B + p] = h1;
            H[i * BC + (1 + m + k) * B + p] = h2;
            Z[i * 2 * m * B + k * B + p] = zp;
            Z[i * 2 * m * B + (m + k) * B + p] = zpp;
          }
        }
    }
    // Output layer: [u; D_k u; D_k^2 u] = w^T [h; h'_k; h''_k] + [b; 0; 0].
    const int dl = d[nl - 1];
    const double* Wo = theta + woff[nl];
    double* U = ws.u.data();
    cblas_dgemv(CblasRowMajor, CblasTrans, dl, BC, 1.0, ws.h[nl - 1].data(), BC, Wo, 1, 0.0, U, 1);
    // Residuals and the output adjoints seeded with w r (gamma, beta_k, alpha_k), DESIGN.md sections 2 and 7.
    double* A = ws.a.data();
    double du[m], d2u[m];
    for (int p = 0; p < B; ++p) {
      const int k = k0 + p;
      for (int i = 0; i < m; ++i) {
        du[i] = U[(1 + i) * B + p];
        d2u[i] = U[(1 + m + i) * B + p];
      }
      const double* al = pts.alpha.data() + static_cast<size_t>(k) * m;
      const double* be = pts.beta.data() + static_cast<size_t>(k) * m;
      const double rk = row_residual_nd(m, al, be, pts.gamma[k], pts.f[k], U[p] + Wo[dl], du, d2u);
      r[k] = rk;
      loss += row_loss(pts.w[k], rk);
      const double c = pts.w[k] * rk;
      A[p] = c * pts.gamma[k];
      for (int i = 0; i < m; ++i) {
        A[(1 + i) * B + p] = c * be[i];
        A[(1 + m + i) * B + p] = c * al[i];
      }
    }
    // Reverse: layer l's parameters from its adjoints A (dout x CB), then the adjoints of layer l-1.
    for (int l = nl; l >= 1; --l) {
      const int din = d[l - 1], dout = d[l];
      const double* W = theta + woff[l];
      double* gW = grad.data() + woff[l];
      double* gb = gW + dout * din;
      for (int i = 0; i < dout; ++i) {
        double s = 0.0;
        for (int p = 0; p < B; ++p) s += A[i * BC + p];
        gb[i] += s;
      }
      if (l == 1) {
        // dRho/dW_ij = zb x_j + zb'_j (the direction e_j's jet of layer 0 is (x, e_j, 0)).
        for (int i = 0; i < dout; ++i)
          for (int j = 0; j < m; ++j) {
            double s = 0.0;
            for (int p = 0; p < B; ++p)
              s += first_layer_weight_adjoint(A[i * BC + p], A[i * BC + (1 + j) * B + p], x[p * m + j]);
            gW[i * m + j] += s;
          }
        break;
      }
      // dRho/dW = sum over points and channels of A_c h_c^T: one product over the CB columns. The contractions of
      // the hidden layers are dgemm here, not the per-point weight_adjoint and jet_dot of common/mlp_math.hpp:
      // sharing those would give up the BLAS products (and their summation order).
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, dout, din, BC, 1.0, A, BC, ws.h[l - 1].data(), BC, 1.0, gW,
                  din);
      double* HB = ws.b.data();
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, din, BC, dout, 1.0, W, din, A, BC, 0.0, HB, BC);
      const double *H = ws.h[l - 1].data(), *Z = ws.zd[l - 1].data();
      // Through each tanh neuron direction by direction (mlp_reverse_point_nd): the directions share t, so z's
      // adjoint sums theirs, the first one carrying h's adjoint.
      for (int j = 0; j < din; ++j)
        for (int p = 0; p < B; ++p) {
          double zb = 0.0;
          for (int k = 0; k < m; ++k) {
            double zb0, zb1, zb2;
            tanh_jet_adjoint(H[j * BC + p], Z[j * 2 * m * B + k * B + p], Z[j * 2 * m * B + (m + k) * B + p],
                             k == 0 ? HB[j * BC + p] : 0.0, HB[j * BC + (1 + k) * B + p],
                             HB[j * BC + (1 + m + k) * B + p], zb0, zb1, zb2);
            zb = k == 0 ? zb0 : zb + zb0;
            HB[j * BC + (1 + k) * B + p] = zb1;
            HB[j * BC + (1 + m + k) * B + p] = zb2;
          }
          HB[j * BC + p] = zb;
        }
      std::swap(ws.a, ws.b);
      A = ws.a.data();
    }
    // ws.a / ws.b may have been swapped an odd number of times: both are full-size, nothing else to restore.
  }
  return loss;
}

}  // namespace

double batched_loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad,
                             BatchedWorkspace& ws, int chunk) {
  switch (pts.dim) {
    case 1:
      return batched_loss_gradient_m<1>(net, pts, r, grad, ws, chunk);
    case 2:
      return batched_loss_gradient_m<2>(net, pts, r, grad, ws, chunk);
    case 3:
      return batched_loss_gradient_m<3>(net, pts, r, grad, ws, chunk);
    default:
      throw std::invalid_argument("batched_loss_gradient: the rows' dimension must be 1, 2 or 3");
  }
}

}  // namespace pinntk
