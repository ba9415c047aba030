#include <algorithm>  // std::min, std::max
#include <climits>    // INT_MAX
#include <stdexcept>  // std::invalid_argument, std::length_error
#include <string>     // std::to_string

#include "cuda/check.cuh"     // PINNTK_CUDA_CHECK, PINNTK_LAUNCH_CHECK
#include "common/mlp_math.hpp"  // tanh_jet, tanh_jet_adjoint
#include "cuda/mlp_tile.hpp"

namespace pinntk {
namespace {

enum class Mode { Eval, Jacobian, Gradient };

// ---- kernels ----

// Layer geometry: read from the NetDesc (WIDTH == 0, any shape), or compile-time constants for networks whose hidden
// layers all have WIDTH neurons (the fast path: constant offsets and loop bounds, no indexed parameter arrays).
template <int WIDTH>
struct Geo {
  const NetDesc& n;
  __device__ int nl() const { return n.nl; }
  __device__ int d(int l) const {  // width of layer l (0 .. nl)
    if constexpr (WIDTH > 0) return (l == 0 || l == n.nl) ? 1 : WIDTH;
    return n.d[l];
  }
  __device__ int h(int l) const {  // width of hidden layer l (1 .. nl-1)
    if constexpr (WIDTH > 0) return WIDTH;
    return n.d[l];
  }
  __device__ int woff(int l) const {
    if constexpr (WIDTH > 0) return l == 1 ? 0 : 2 * WIDTH + (l - 2) * (WIDTH * WIDTH + WIDTH);
    return n.woff[l];
  }
  __device__ int toff(int l) const {
    if constexpr (WIDTH > 0) return 5 * WIDTH * (l - 1);
    return n.toff[l];
  }
  __device__ int soff(int l) const {
    if constexpr (WIDTH > 0) return (l - 2) * WIDTH * (WIDTH + 1);
    return n.soff[l];
  }
  __device__ int tape() const {
    if constexpr (WIDTH > 0) return 5 * WIDTH * (n.nl - 1);
    return n.tape;
  }
  __device__ int maxw() const {
    if constexpr (WIDTH > 0) return WIDTH;
    return n.maxw;
  }
  __device__ int staged() const {
    if constexpr (WIDTH > 0) return (n.nl - 2) * WIDTH * (WIDTH + 1);
    return n.staged;
  }
};

// z += sum_j w[j ws] H[j], and the same for the z' and z'' channels (H channel c at H + c hs). N > 0: compile-time
// trip count.
template <int N, class Real>
__device__ inline void forward_dot(int n_rt, const Real* w, int ws, const Real* H, int hs, Real& z, Real& zp,
                                   Real& zpp) {
  const int n = N > 0 ? N : n_rt;
#pragma unroll 8
  for (int j = 0; j < n; ++j) {
    const Real x = w[j * ws];
    z += x * H[j];
    zp += x * H[hs + j];
    zpp += x * H[2 * hs + j];
  }
}

// hb_c = sum_i w[i ws] A_c[i] for the three adjoint channels (A_c at A + c mw).
template <int N, class Real>
__device__ inline void adjoint_dot(int n_rt, const Real* w, int ws, const Real* A, int mw, Real& h0, Real& h1,
                                   Real& h2) {
  const int n = N > 0 ? N : n_rt;
#pragma unroll 8
  for (int i = 0; i < n; ++i) {
    const Real x = w[i * ws];
    h0 += x * A[i];
    h1 += x * A[mw + i];
    h2 += x * A[2 * mw + i];
  }
}

// Parameter phase of a hidden-to-hidden layer of width W (fast path, blockDim 256): thread (group, j) covers
// column j of rows group, group + G, ... with G = 256 / W groups. Jacobian: writes the rows of every point;
// gradient: sums over the tile's points in registers (in chunks of at most 16 rows) and writes the block's partial.
template <int W, Mode MODE, class Real>
__device__ inline void hidden_param_rows(int tid, int tv, int P, int k0, int off, const Real* adj, int adj_stride,
                                         int a_off, int mw, const Real* tape, int tl, int hoff, Real* out0,
                                         Real* out1) {
  constexpr int G = 256 / W > 0 ? 256 / W : 1;
  constexpr int RPT = (W + G - 1) / G;
  constexpr int CH = RPT < 16 ? RPT : 16;
  const int grp = tid / W, j = tid - grp * W;
  if (grp >= G) return;
  if (MODE == Mode::Jacobian) {
    for (int p = 0; p < tv; ++p) {
      const Real* A = adj + p * adj_stride + a_off;
      const Real* H = tape + p * tl + hoff;
      const Real h0 = H[j], h1 = H[W + j], h2 = H[2 * W + j];
      Real* row = out1 + static_cast<size_t>(k0 + p) * P + off;
#pragma unroll 4
      for (int r = 0; r < RPT; ++r) {
        const int i = grp + G * r;
        if (i < W) row[i * W + j] = A[i] * h0 + A[mw + i] * h1 + A[2 * mw + i] * h2;
      }
    }
  } else {
    Real* part = out0 + static_cast<size_t>(blockIdx.x) * P + off;
    for (int r0 = 0; r0 < RPT; r0 += CH) {
      Real acc[CH];
#pragma unroll
      for (int r = 0; r < CH; ++r) acc[r] = Real(0);
      for (int p = 0; p < tv; ++p) {
        const Real* A = adj + p * adj_stride + a_off;
        const Real* H = tape + p * tl + hoff;
        const Real h0 = H[j], h1 = H[W + j], h2 = H[2 * W + j];
#pragma unroll
        for (int r = 0; r < CH; ++r) {
          const int i = grp + G * (r0 + r);
          if (i < W) acc[r] += A[i] * h0 + A[mw + i] * h1 + A[2 * mw + i] * h2;
        }
      }
#pragma unroll
      for (int r = 0; r < CH; ++r) {
        const int i = grp + G * (r0 + r);
        if (i < W) part[i * W + j] = acc[r];
      }
    }
  }
}

// One block per tile of T points. Shared memory: the staged weights (STAGED), then per point the tape, two sets of
// three adjoint vectors (6 maxw) and one loss slot. Threads loop over (point, neuron) in the passes and over
// parameters when writing Jacobian rows or partial gradients, so consecutive threads write consecutive entries.
template <class Real, Mode MODE, bool STAGED, int WIDTH>
__global__ void __launch_bounds__(256)
    mlp_tile_kernel(NetDesc net, const Real* __restrict__ theta, DeviceRows<Real> rows, int T, Real* __restrict__ out0,
                    Real* __restrict__ out1, Real* __restrict__ out2, unsigned long long* __restrict__ step) {
  // The descriptor's arrays are indexed at run time: keep them in shared memory rather than in local memory.
  __shared__ alignas(NetDesc) unsigned char s_net_raw[sizeof(NetDesc)];
  NetDesc& s_net = *reinterpret_cast<NetDesc*>(s_net_raw);
  if (threadIdx.x == 0) s_net = net;
  __syncthreads();
  const Geo<WIDTH> g{s_net};
  extern __shared__ unsigned char smem_raw[];
  Real* Ws = reinterpret_cast<Real*>(smem_raw);  // staged W^T blocks (STAGED only)
  Real* tape = Ws + (STAGED ? g.staged() : 0);
  const int tl = g.tape();
  const int mw = g.maxw();
  const int adj_stride = 6 * mw;
  Real* adj = tape + static_cast<size_t>(T) * tl;
  Real* loss_slot = adj + static_cast<size_t>(T) * adj_stride;
  const int nl = g.nl();
  const int P = s_net.P;
  const int k0 = blockIdx.x * T;
  const int tv = min(T, rows.n - k0);
  const int tid = threadIdx.x, nt = blockDim.x;

  if (STAGED) {
    for (int l = 2; l < nl; ++l) {
      const int din = g.h(l - 1), dout = g.h(l), ld = dout + 1;
      const Real* W = theta + g.woff(l);
      Real* S = Ws + g.soff(l);
      for (int idx = tid; idx < dout * din; idx += nt) {
        const int i = idx / din, j = idx - i * din;
        S[j * ld + i] = W[idx];  // coalesced reads; visible after the barrier that ends layer 1
      }
    }
  }

  // Forward, layer 1: h^0 = x, h'^0 = 1, h''^0 = 0, so z = w x + b, z' = w, z'' = 0 (DESIGN.md section 2).
  {
    const int d1 = g.h(1);
    for (int idx = tid; idx < tv * d1; idx += nt) {
      const int p = idx / d1, i = idx - p * d1;
      const Real w = theta[i];
      const Real t = tanh(w * rows.x[k0 + p] + theta[d1 + i]);
      Real h1, h2;
      tanh_jet(t, w, Real(0), h1, h2);
      Real* L = tape + p * tl;
      L[i] = t;
      L[d1 + i] = h1;
      L[2 * d1 + i] = h2;
      L[3 * d1 + i] = w;
      L[4 * d1 + i] = Real(0);
    }
  }
  __syncthreads();
  for (int l = 2; l < nl; ++l) {
    const int din = g.h(l - 1), dout = g.h(l);
    const Real* W = theta + g.woff(l);
    const Real* b = W + dout * din;
    for (int idx = tid; idx < tv * dout; idx += nt) {
      const int p = idx / dout, i = idx - p * dout;
      const Real* H = tape + p * tl + g.toff(l - 1);
      Real z = b[i], zp = Real(0), zpp = Real(0);
      if (STAGED) {
        forward_dot<WIDTH>(din, Ws + g.soff(l) + i, dout + 1, H, din, z, zp, zpp);
      } else {
        forward_dot<WIDTH>(din, W + i * din, 1, H, din, z, zp, zpp);
      }
      const Real t = tanh(z);
      Real h1, h2;
      tanh_jet(t, zp, zpp, h1, h2);
      Real* L = tape + p * tl + g.toff(l);
      L[i] = t;
      L[dout + i] = h1;
      L[2 * dout + i] = h2;
      L[3 * dout + i] = zp;
      L[4 * dout + i] = zpp;
    }
    __syncthreads();
  }
  // Output layer (linear): u, u', u'', then the residual and the reverse-pass seeds (gamma, beta, alpha).
  {
    const int din = g.h(nl - 1);
    const Real* W = theta + g.woff(nl);
    for (int p = tid; p < tv; p += nt) {
      const Real* H = tape + p * tl + g.toff(nl - 1);
      Real u = W[din], u1 = Real(0), u2 = Real(0);
      forward_dot<WIDTH>(din, W, 1, H, din, u, u1, u2);
      const int k = k0 + p;
      if (MODE == Mode::Eval) {
        out0[k] = u;
        out1[k] = u1;
        out2[k] = u2;
      } else {
        const Real r = rows.alpha[k] * u2 + rows.beta[k] * u1 + rows.gamma[k] * u - rows.f[k];
        Real c = Real(1);
        if (MODE == Mode::Jacobian) {
          out0[k] = r;
        } else {
          c = rows.w[k] * r;  // d/dtheta of 1/2 w r^2 is w r d rho/d theta
          loss_slot[p] = Real(0.5) * c * r;
          if (out2 != nullptr) out2[k] = r;
        }
        Real* A = adj + p * adj_stride;
        A[0] = c * rows.gamma[k];
        A[mw] = c * rows.beta[k];
        A[2 * mw] = c * rows.alpha[k];
      }
    }
  }
  if (MODE == Mode::Eval) return;  // the whole block leaves together
  __syncthreads();
  if (MODE == Mode::Gradient && tid == 0) {
    Real sum = Real(0);
    for (int p = 0; p < tv; ++p) sum += loss_slot[p];
    out1[blockIdx.x] = sum;
    if (step != nullptr && blockIdx.x == 0) *step += 1;
  }

  // Reverse (DESIGN.md section 2): parameters of layer l from the adjoints A of z^l, then the adjoints of z^{l-1}.
  int a_off = 0, b_off = 3 * mw;
  for (int l = nl; l >= 1; --l) {
    const int din = g.d(l - 1), dout = g.d(l);
    const int off = g.woff(l);
    const int hoff = l > 1 ? g.toff(l - 1) : 0;
    const int nw = dout * din;
    // Thread tid starts at weight entry q = tid, i.e. row i = tid / din, column j = tid % din, and advances by nt
    // entries (di rows and dj columns) per iteration: no division in the loops.
    const int i0 = tid / din, j0 = tid - i0 * din, di = nt / din, dj = nt - di * din;
    bool fast_layer = false;
    if constexpr (WIDTH > 0) fast_layer = l > 1 && l < nl;
    if constexpr (WIDTH > 0) {
      if (fast_layer) {
        // Fast path, hidden-to-hidden weights: thread (group, j) loads H_c[p][j] once per point and reuses it for
        // its rows i = group, group + G, ... (A_c[p][i] is a broadcast), half the shared-memory traffic of one
        // entry per thread.
        hidden_param_rows<WIDTH, MODE>(tid, tv, P, k0, off, adj, adj_stride, a_off, mw, tape, tl, hoff, out0, out1);
        for (int q = tid; q < dout; q += nt) {
          Real acc = Real(0);
          if (MODE == Mode::Jacobian) {
            for (int p = 0; p < tv; ++p)
              out1[static_cast<size_t>(k0 + p) * P + off + nw + q] = adj[p * adj_stride + a_off + q];
          } else {
            for (int p = 0; p < tv; ++p) acc += adj[p * adj_stride + a_off + q];
            out0[static_cast<size_t>(blockIdx.x) * P + off + nw + q] = acc;
          }
        }
      }
    }
    if (fast_layer) {
      // done above
    } else if (MODE == Mode::Jacobian) {
      for (int p = 0; p < tv; ++p) {
        const Real* A = adj + p * adj_stride + a_off;
        const Real* H = tape + p * tl + hoff;
        const Real x = rows.x[k0 + p];
        Real* row = out1 + static_cast<size_t>(k0 + p) * P + off;
        int i = i0, j = j0;
        for (int q = tid; q < nw; q += nt) {
          row[q] =
              (l == 1) ? A[i] * x + A[mw + i] : A[i] * H[j] + A[mw + i] * H[din + j] + A[2 * mw + i] * H[2 * din + j];
          i += di;
          j += dj;
          if (j >= din) {
            j -= din;
            ++i;
          }
        }
        for (int q = tid; q < dout; q += nt) row[nw + q] = A[q];
      }
    } else {
      Real* part = out0 + static_cast<size_t>(blockIdx.x) * P + off;
      int i = i0, j = j0;
      for (int q = tid; q < nw; q += nt) {
        Real acc = Real(0);
        for (int p = 0; p < tv; ++p) {
          const Real* A = adj + p * adj_stride + a_off;
          if (l == 1) {
            acc += A[i] * rows.x[k0 + p] + A[mw + i];
          } else {
            const Real* H = tape + p * tl + hoff;
            acc += A[i] * H[j] + A[mw + i] * H[din + j] + A[2 * mw + i] * H[2 * din + j];
          }
        }
        part[q] = acc;
        i += di;
        j += dj;
        if (j >= din) {
          j -= din;
          ++i;
        }
      }
      for (int q = tid; q < dout; q += nt) {
        Real acc = Real(0);
        for (int p = 0; p < tv; ++p) acc += adj[p * adj_stride + a_off + q];
        part[nw + q] = acc;
      }
    }
    if (l > 1) {
      const Real* W = theta + off;
      const bool from_smem = STAGED && l < nl;
      for (int idx = tid; idx < tv * din; idx += nt) {
        const int p = idx / din, j = idx - p * din;
        const Real* A = adj + p * adj_stride + a_off;
        Real* B = adj + p * adj_stride + b_off;
        Real hb0 = Real(0), hb1 = Real(0), hb2 = Real(0);
        if (from_smem) {
          adjoint_dot<WIDTH>(dout, Ws + g.soff(l) + j * (dout + 1), 1, A, mw, hb0, hb1, hb2);
        } else if (WIDTH > 0 && l < nl) {
          adjoint_dot<WIDTH>(dout, W + j, din, A, mw, hb0, hb1, hb2);
        } else {
          adjoint_dot<0>(dout, W + j, din, A, mw, hb0, hb1, hb2);
        }
        const Real* L = tape + p * tl + hoff;
        tanh_jet_adjoint(L[j], L[3 * din + j], L[4 * din + j], hb0, hb1, hb2, B[j], B[mw + j], B[2 * mw + j]);
      }
      const int t = a_off;
      a_off = b_off;
      b_off = t;
    }
    __syncthreads();
  }
}

// Sums the per-block partials in a fixed order (deterministic), then (optionally) Adam (cuda/adam_math.cuh).
// A block is 32 parameters x kReduceRows: row y sums partials y, y + kReduceRows, ..., then row 0 adds the rows.
constexpr int kReduceRows = 8;

template <class Real>
__global__ void __launch_bounds__(32 * kReduceRows)
    reduce_adam_kernel(int P, int blocks, const Real* __restrict__ partial, const Real* __restrict__ partial_loss,
                       Real* __restrict__ grad, double* loss, Real* __restrict__ theta, Real* __restrict__ m,
                       Real* __restrict__ v, const double* lr, const unsigned long long* step, AdamParams adam) {
  __shared__ Real rowsum[kReduceRows][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int p = blockIdx.x * 32 + tx;
  if (blockIdx.x == 0 && ty == 1) {
    // The loss: one warp, lanes stride over the blocks, then a fixed-order shuffle tree.
    double s = 0.0;
    for (int b = tx; b < blocks; b += 32) s += double(partial_loss[b]);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if (tx == 0) *loss = s;
  }
  Real g = Real(0);
  if (p < P) {
#pragma unroll 4
    for (int b = ty; b < blocks; b += kReduceRows) g += partial[static_cast<size_t>(b) * P + p];
  }
  rowsum[ty][tx] = g;
  __syncthreads();
  if (ty != 0 || p >= P) return;
  for (int y = 1; y < kReduceRows; ++y) g += rowsum[y][tx];
  if (grad != nullptr) grad[p] = g;
  if (m != nullptr) {
    const double t = double(*step);
    adam_update(theta[p], m[p], v[p], g, *lr, adam, 1.0 - pow(adam.beta1, t), 1.0 - pow(adam.beta2, t));
  }
}

// ---- launchers ----

struct DeviceLimits {
  int sms = 0;
  size_t smem_optin = 0;
};

const DeviceLimits& device_limits() {
  static const DeviceLimits lim = [] {
    DeviceLimits l;
    int dev = 0, v = 0;
    PINNTK_CUDA_CHECK(cudaGetDevice(&dev));
    PINNTK_CUDA_CHECK(cudaDeviceGetAttribute(&l.sms, cudaDevAttrMultiProcessorCount, dev));
    PINNTK_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    l.smem_optin = static_cast<size_t>(v) - 1024;  // room for the kernels' static shared memory
    return l;
  }();
  return lim;
}

// Hidden widths with a compile-time fast path (one switch, below); 0 is the generic path.
template <int... W>
struct WidthList {};
using FastWidths = WidthList<40, 50, 60, 64, 128>;

bool g_fast_paths = true;  // tests and benchmarks can force the generic path

// Raises every tile kernel's dynamic shared-memory limit to the device's opt-in maximum, once (not a stream
// operation, so it must not first happen inside a graph capture: prepare_tile_kernels runs it up front).
template <class Real, Mode MODE, int WIDTH>
void allow_large_smem_one(int optin) {
  // The limit counts dynamic bytes on top of the kernel's static shared memory (its NetDesc copy).
  auto set = [optin](auto kernel) {
    cudaFuncAttributes a;
    PINNTK_CUDA_CHECK(cudaFuncGetAttributes(&a, kernel));
    PINNTK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           optin - static_cast<int>(a.sharedSizeBytes)));
  };
  set(mlp_tile_kernel<Real, MODE, false, WIDTH>);
  set(mlp_tile_kernel<Real, MODE, true, WIDTH>);
}
template <class Real, Mode MODE, int... W>
void allow_large_smem_all(WidthList<W...>, int optin) {
  allow_large_smem_one<Real, MODE, 0>(optin);
  (allow_large_smem_one<Real, MODE, W>(optin), ...);
}
template <class Real, Mode MODE>
void allow_large_smem() {
  static const bool done = [] {
    allow_large_smem_all<Real, MODE>(FastWidths{}, static_cast<int>(device_limits().smem_optin + 1024));
    return true;
  }();
  (void)done;
}

template <class Real, Mode MODE, bool STAGED, int WIDTH>
void launch_tile_width(const NetDesc& net, const TilePlan& plan, const Real* theta, DeviceRows<Real> rows, Real* o0,
                       Real* o1, Real* o2, unsigned long long* step, cudaStream_t s) {
  mlp_tile_kernel<Real, MODE, STAGED, WIDTH>
      <<<plan.blocks, plan.threads, plan.smem, s>>>(net, theta, rows, plan.T, o0, o1, o2, step);
}

template <class Real, Mode MODE, bool STAGED>
void launch_tile_staged(const NetDesc& net, const TilePlan& plan, const Real* theta, DeviceRows<Real> rows, Real* o0,
                        Real* o1, Real* o2, unsigned long long* step, cudaStream_t s) {
  // The single switch from the run-time width to a compiled kernel.
  switch (g_fast_paths ? net.uniform_width : 0) {
    case 40:
      return launch_tile_width<Real, MODE, STAGED, 40>(net, plan, theta, rows, o0, o1, o2, step, s);
    case 50:
      return launch_tile_width<Real, MODE, STAGED, 50>(net, plan, theta, rows, o0, o1, o2, step, s);
    case 60:
      return launch_tile_width<Real, MODE, STAGED, 60>(net, plan, theta, rows, o0, o1, o2, step, s);
    case 64:
      return launch_tile_width<Real, MODE, STAGED, 64>(net, plan, theta, rows, o0, o1, o2, step, s);
    case 128:
      return launch_tile_width<Real, MODE, STAGED, 128>(net, plan, theta, rows, o0, o1, o2, step, s);
    default:
      return launch_tile_width<Real, MODE, STAGED, 0>(net, plan, theta, rows, o0, o1, o2, step, s);
  }
}

template <class Real, Mode MODE>
void launch_tile(const NetDesc& net, const TilePlan& plan, const Real* theta, DeviceRows<Real> rows, Real* o0, Real* o1,
                 Real* o2, unsigned long long* step, cudaStream_t s) {
  if (rows.n <= 0) return;
  allow_large_smem<Real, MODE>();
  if (plan.staged) {
    launch_tile_staged<Real, MODE, true>(net, plan, theta, rows, o0, o1, o2, step, s);
  } else {
    launch_tile_staged<Real, MODE, false>(net, plan, theta, rows, o0, o1, o2, step, s);
  }
  PINNTK_LAUNCH_CHECK();
}

}  // namespace

NetDesc make_net_desc(const std::vector<int>& layers) {
  const int nl = static_cast<int>(layers.size()) - 1;
  if (nl < 2) throw std::invalid_argument("CUDA kernels need at least one hidden layer");
  if (nl > kMaxWeightLayers)
    throw std::invalid_argument("CUDA kernels take at most " + std::to_string(kMaxWeightLayers - 1) + " hidden layers");
  if (layers.front() != 1 || layers.back() != 1) throw std::invalid_argument("layers must start and end with 1");
  // P, the offsets and the tape are ints on the device: refuse a shape whose counts would wrap.
  long long params = 0, staged = 0, tape = 0;
  for (int l = 1; l <= nl; ++l) {
    if (layers[l] < 1) throw std::invalid_argument("layer widths must be positive");
    params += static_cast<long long>(layers[l]) * layers[l - 1] + layers[l];
    if (l >= 2 && l < nl) staged += static_cast<long long>(layers[l - 1]) * (layers[l] + 1);
    if (l < nl) tape += 5LL * layers[l];
  }
  if (params > INT_MAX || staged > INT_MAX || tape > INT_MAX)
    throw std::length_error("network too large for the CUDA kernels: " + std::to_string(params) + " parameters");
  NetDesc n;
  n.nl = nl;
  int woff = 0, toff = 0;
  for (int l = 0; l <= nl; ++l) n.soff[l] = 0;
  for (int l = 2; l < nl; ++l) {
    n.soff[l] = n.staged;
    n.staged += layers[l - 1] * (layers[l] + 1);
  }
  for (int l = 0; l <= nl; ++l) {
    n.d[l] = layers[l];
    n.maxw = std::max(n.maxw, layers[l]);
    if (l == 0) continue;
    n.woff[l] = woff;
    woff += layers[l] * layers[l - 1] + layers[l];
    n.toff[l] = toff;
    if (l < nl) toff += 5 * layers[l];
  }
  n.P = woff;
  n.tape = toff;
  n.uniform_width = layers[1];
  for (int l = 1; l < nl; ++l)
    if (layers[l] != layers[1]) n.uniform_width = 0;
  return n;
}

namespace {
int g_tile_points = 0;        // 0: choose by the rule below
bool g_stage_weights = true;  // stage hidden weights in shared memory where they fit
}  // namespace

void set_tile_points_override(int points) { g_tile_points = points; }
void set_weight_staging(bool on) { g_stage_weights = on; }
void set_fast_paths(bool on) { g_fast_paths = on; }

template <class Real>
TilePlan plan_tiles(const NetDesc& net, int n) {
  const DeviceLimits& lim = device_limits();
  const size_t per_point = (static_cast<size_t>(net.tape) + 6 * net.maxw + 1) * sizeof(Real);
  // Keep two blocks per multiprocessor possible, and aim for two waves of blocks over the chip.
  const size_t budget = std::min<size_t>(lim.smem_optin, 100 * 1024);
  if (per_point > lim.smem_optin)
    throw std::invalid_argument("network too large for the CUDA tile kernel: one point needs " +
                                std::to_string(per_point) + " bytes of shared memory, the device has " +
                                std::to_string(lim.smem_optin));
  const int tmax = static_cast<int>(std::max<size_t>(1, std::min<size_t>(32, budget / per_point)));
  // Four points per block measured best for the 4x40 network on an H200 (benchmarks/RESULTS.md), for both the
  // Jacobian at 65536 points and the gradient at 1024; fewer when there are too few points to fill the chip twice.
  const int want =
      static_cast<int>(std::min<long long>(4, (static_cast<long long>(n) + 2 * lim.sms - 1) / (2 * lim.sms)));
  TilePlan p;
  p.T = std::max(1, std::min(tmax, g_tile_points > 0 ? g_tile_points : want));
  p.threads = 256;
  p.blocks = static_cast<int>((static_cast<long long>(n) + p.T - 1) / p.T);
  p.smem = per_point * p.T;
  const size_t staged_bytes = static_cast<size_t>(net.staged) * sizeof(Real);
  p.staged = g_stage_weights && net.staged > 0 && p.smem + staged_bytes <= lim.smem_optin;
  if (p.staged) p.smem += staged_bytes;
  return p;
}

template <class Real>
void prepare_tile_kernels() {
  allow_large_smem<Real, Mode::Eval>();
  allow_large_smem<Real, Mode::Jacobian>();
  allow_large_smem<Real, Mode::Gradient>();
  // Loads the reduction kernel too (lazy loading would otherwise load it at its first launch, inside a capture).
  static const bool loaded = [] {
    cudaFuncAttributes a;
    PINNTK_CUDA_CHECK(cudaFuncGetAttributes(&a, reduce_adam_kernel<Real>));
    return true;
  }();
  static_cast<void>(loaded);
}

template <class Real>
void launch_eval(const NetDesc& net, const Real* theta, const Real* x, int n, Real* u, Real* du, Real* d2u,
                 cudaStream_t s) {
  const DeviceRows<Real> rows{x, nullptr, nullptr, nullptr, nullptr, nullptr, n};
  launch_tile<Real, Mode::Eval>(net, plan_tiles<Real>(net, n), theta, rows, u, du, d2u, nullptr, s);
}

template <class Real>
void launch_jacobian(const NetDesc& net, const Real* theta, DeviceRows<Real> rows, Real* r, Real* J, cudaStream_t s) {
  launch_tile<Real, Mode::Jacobian>(net, plan_tiles<Real>(net, rows.n), theta, rows, r, J, nullptr, nullptr, s);
}

template <class Real>
void launch_gradient(const NetDesc& net, const Real* theta, DeviceRows<Real> rows, Real* partial, Real* partial_loss,
                     Real* r, unsigned long long* step, cudaStream_t s) {
  launch_tile<Real, Mode::Gradient>(net, plan_tiles<Real>(net, rows.n), theta, rows, partial, partial_loss, r, step, s);
}

template <class Real>
void launch_reduce_adam(int P, int blocks, const Real* partial, const Real* partial_loss, Real* grad, double* loss,
                        Real* theta, Real* m, Real* v, const double* lr, const unsigned long long* step,
                        AdamParams adam, cudaStream_t s) {
  if ((m == nullptr) != (v == nullptr) || (m != nullptr && (theta == nullptr || lr == nullptr || step == nullptr)))
    throw std::invalid_argument("launch_reduce_adam: the Adam update needs theta, m, v, lr and step");
  const dim3 threads(32, kReduceRows);
  reduce_adam_kernel<Real>
      <<<(P + 31) / 32, threads, 0, s>>>(P, blocks, partial, partial_loss, grad, loss, theta, m, v, lr, step, adam);
  PINNTK_LAUNCH_CHECK();
}

// ---- explicit instantiations ----
#define PINNTK_INSTANTIATE(Real)                                                                                     \
  template TilePlan plan_tiles<Real>(const NetDesc&, int);                                                           \
  template void prepare_tile_kernels<Real>();                                                                        \
  template void launch_eval<Real>(const NetDesc&, const Real*, const Real*, int, Real*, Real*, Real*, cudaStream_t); \
  template void launch_jacobian<Real>(const NetDesc&, const Real*, DeviceRows<Real>, Real*, Real*, cudaStream_t);    \
  template void launch_gradient<Real>(const NetDesc&, const Real*, DeviceRows<Real>, Real*, Real*, Real*,            \
                                      unsigned long long*, cudaStream_t);                                            \
  template void launch_reduce_adam<Real>(int, int, const Real*, const Real*, Real*, double*, Real*, Real*, Real*,    \
                                         const double*, const unsigned long long*, AdamParams, cudaStream_t);
PINNTK_INSTANTIATE(double)
PINNTK_INSTANTIATE(float)
#undef PINNTK_INSTANTIATE

}  // namespace pinntk
