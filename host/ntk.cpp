#include "host/ntk.hpp"

#include <algorithm>   // std::sort, std::min, std::max, std::copy_n, std::all_of
#include <cmath>       // std::sqrt, std::isfinite
#include <functional>  // std::greater
#include <stdexcept>   // std::invalid_argument
#include <string>      // std::to_string
#include <utility>     // std::pair

#include "common/errors.hpp"       // UsageError, NumericalError
#include "host/cpu_batched.hpp"    // batched_sample_gram_pays, batched_sample_gram_bytes, batched_workspace_bytes
#include "host/memory.hpp"         // require_memory, available_memory_bytes, format_bytes
#include "host/work_progress.hpp"  // work_progress

namespace pinntk {
namespace {

constexpr const char* kNotFinite =
    "the NTK's entries are not finite in double precision (the problem's coefficients or the network's weights are "
    "too large)";

// Sums of up to N^2 squares or products: accumulated in long double so that a norm is correct to the last digit
// (cuBLAS nrm2 on the GPU is too; a plain double sum of 10^6 terms drifts by about 1e-13).
long double inner(const std::vector<double>& A, const std::vector<double>& B) {
  long double s = 0.0L;
  for (size_t q = 0; q < A.size(); ++q) s += static_cast<long double>(A[q]) * B[q];
  return s;
}

// ||G||_F; NumericalError when it is not finite.
double checked_frobenius(const std::vector<double>& G) {
  const double f = static_cast<double>(std::sqrt(inner(G, G)));
  if (!std::isfinite(f)) throw NumericalError(kNotFinite);
  return f;
}

// The descending spectrum of the n x n form whose nonzero eigenvalues are those of the m x m Gram G (overwritten):
// G's m eigenvalues and n - m zeros. The smallest computed eigenvalue may be rounding noise below zero: the whole
// list is sorted.
std::vector<double> padded_spectrum(Backend& be, std::vector<double>& G, int m, int n) {
  std::vector<double> e(n, 0.0);
  be.symmetric_eigenvalues(G, m, span<double>(e.data(), m));
  std::sort(e.begin(), e.end(), std::greater<double>());
  return e;
}

// Rows [begin, begin + count) of pts, all of one block (x, alpha and beta have pts.dim numbers per row, dirs dim^2).
PointSet rows_of(const PointSet& pts, int begin, int count, bool collocation) {
  PointSet s;
  s.dim = pts.dim;
  s.nc = collocation ? count : 0;
  s.nb = collocation ? 0 : count;
  const size_t b = begin, e = b + count, m = pts.dim;
  auto slice = [&](const std::vector<double>& v, size_t per) {
    return std::vector<double>(v.begin() + b * per, v.begin() + e * per);
  };
  s.x = slice(pts.x, m);
  s.alpha = slice(pts.alpha, m);
  s.beta = slice(pts.beta, m);
  s.gamma = slice(pts.gamma, 1);
  s.f = slice(pts.f, 1);
  s.w = slice(pts.w, 1);
  if (pts.has_directions()) s.dirs = slice(pts.dirs, m * m);
  return s;
}

}  // namespace

void scale_rows_sqrt(std::vector<double>& A, const double* d, int n, int p) {
  for (int i = 0; i < n; ++i) {
    const double s = std::sqrt(d[i]);
    for (int q = 0; q < p; ++q) A[static_cast<size_t>(i) * p + q] *= s;
  }
}

double ntk_memory_bytes(long n, long p, bool save_matrices) {
  const double dn = static_cast<double>(n), dp = static_cast<double>(p), m = std::min(dn, dp);
  // J, D^1/2 J and its row blocks, D J (n > p); the largest Gram, its copy for the eigensolver, two p x p Grams.
  double doubles = 4.0 * dn * dp + 2.0 * m * m + (n > p ? 2.0 * dp * dp : 0.0) + 8.0 * dn;
  if (save_matrices) doubles += dn * dp + 2.0 * dn * dn;  // J.npy's bytes, K and K.npy's bytes
  return 8.0 * doubles;
}

bool all_positive(const std::vector<double>& d) {
  return std::all_of(d.begin(), d.end(), [](double v) { return v > 0.0; });
}

std::optional<double> cpu_sample_gram_bytes(const Mlp& net, const PointSet& pts, const std::vector<double>& d,
                                            bool cpu) {
  if (!cpu || !all_positive(d) || !batched_sample_gram_pays(net, pts)) return std::nullopt;
  return batched_sample_gram_bytes(net, pts) + batched_workspace_bytes(net, pts, 0);
}

double ntk_exact_memory_bytes(const Mlp& net, const PointSet& pts, bool save_matrices, bool cpu) {
  const long n = pts.size(), p = static_cast<long>(net.n_params());
  const std::optional<double> extra =
      save_matrices || n > p ? std::nullopt : cpu_sample_gram_bytes(net, pts, pts.w, cpu);
  // Formed J: on the CPU also the buffers of its batched pass (batched_residuals_jacobian).
  if (!extra) return ntk_memory_bytes(n, p, save_matrices) + (cpu ? batched_workspace_bytes(net, pts, 0) : 0.0);
  // K_s, the block copies for the eigensolver (at most N^2 more), the residuals; the channels and buffers.
  const double dn = static_cast<double>(n);
  return 8.0 * (2.0 * dn * dn + 8.0 * dn) + *extra;
}

double kernel_memory_bytes(const Mlp& net, const PointSet& pts, const std::vector<double>& d, bool cpu) {
  const double n = pts.size(), p = static_cast<double>(net.n_params());
  if (const std::optional<double> extra = cpu_sample_gram_bytes(net, pts, d, cpu)) return 8.0 * n * n + *extra;
  return 8.0 * (n * p + 2.0 * n * n) + (cpu ? batched_workspace_bytes(net, pts, 0) : 0.0);
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
  out.frobenius = checked_frobenius(G);
  out.eigenvalues = padded_spectrum(be, G, m, n);
  return out;
}

double frobenius_weighted(Backend& be, const std::vector<double>& J, const std::vector<double>& d, int n, int p) {
  long double f2 = 0.0L;  // see inner
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
    f2 = inner(B, C);
  }
  const double f = static_cast<double>(std::sqrt(f2 > 0.0L ? f2 : 0.0L));
  if (!std::isfinite(f)) throw NumericalError(kNotFinite);
  return f;
}

void ntk_from_sample_gram(Backend& be, std::vector<double>&& Ks, const std::vector<double>& d, int nc, NtkResult& res) {
  const int n = static_cast<int>(d.size()), nb = n - nc;
  long double f2 = 0.0L;  // K_km = (J J^T)_km d_m = Ks_km sqrt(d_m / d_k)
  for (int k = 0; k < n; ++k)
    for (int m = 0; m < n; ++m) {
      const double e = Ks[static_cast<size_t>(k) * n + m];
      f2 += static_cast<long double>(e) * e * (static_cast<long double>(d[m]) / d[k]);
    }
  res.frobenius_K = static_cast<double>(std::sqrt(f2));
  if (!std::isfinite(res.frobenius_K)) throw NumericalError(kNotFinite);
  auto block = [&](int b, int rows) {  // the principal block of rows [b, b + rows)
    std::vector<double> G(static_cast<size_t>(rows) * rows);
    for (int i = 0; i < rows; ++i)
      std::copy_n(Ks.begin() + static_cast<size_t>(b + i) * n + b, rows, G.begin() + static_cast<size_t>(i) * rows);
    return G;
  };
  std::vector<double> Guu = block(0, nc), Gbb = block(nc, nb);
  res.frobenius_Kuu = checked_frobenius(Guu);
  res.frobenius_Kbb = checked_frobenius(Gbb);
  res.spectrum_Kuu = padded_spectrum(be, Guu, nc, nc);
  res.spectrum_Kbb = padded_spectrum(be, Gbb, nb, nb);
  res.spectrum_K = padded_spectrum(be, Ks, n, n);  // finite: ||K||_F above is
  res.gram_trick = false;
}

NtkResult analyze_ntk(Backend& be, const Mlp& net, const PointSet& pts, NtkScaling scaling, bool keep_jacobian,
                      long chunk_rows) {
  if (chunk_rows > 0 && keep_jacobian) throw std::invalid_argument("analyze_ntk: the chunked path keeps no Jacobian");
  const std::vector<double> d = ntk_row_weights(pts, scaling);
  NtkResult r = chunk_rows > 0 ? ntk_chunked(be, net, pts, d, chunk_rows) : be.ntk(net, pts, d, keep_jacobian);
  // Every backend's numbers pass here, the device's too.
  const bool finite = std::isfinite(r.frobenius_K) && std::isfinite(r.frobenius_Kuu) && std::isfinite(r.frobenius_Kbb);
  for (const auto* e : {&r.spectrum_K, &r.spectrum_Kuu, &r.spectrum_Kbb, &r.residuals})
    for (double v : *e)
      if (!finite || !std::isfinite(v)) throw NumericalError(kNotFinite);
  return r;
}

bool ntk_weights_blockwise(const std::vector<double>& d, int nc) {
  const int n = static_cast<int>(d.size());
  for (const auto& [b, e] : {std::pair<int, int>(0, nc), std::pair<int, int>(nc, n)})
    for (int i = b; i < e; ++i)
      if (!(d[i] > 0.0) || !std::isfinite(d[i]) || d[i] != d[b]) return false;
  return true;
}

std::vector<NtkChunk> ntk_chunks(const PointSet& pts, const std::vector<double>& d, int p, long chunk_rows) {
  const int n = pts.size();
  const size_t un = n, dim = pts.dim;
  if (pts.nc < 0 || pts.nb < 0 || pts.dim < 1 || pts.x.size() != un * dim || pts.alpha.size() != un * dim ||
      pts.beta.size() != un * dim || pts.gamma.size() != un || pts.f.size() != un || pts.w.size() != un ||
      d.size() != un)
    throw std::invalid_argument("ntk_chunked: the point set's or the weights' sizes do not match N = " +
                                std::to_string(n));
  if (n <= p)
    throw std::invalid_argument("ntk_chunked: N = " + std::to_string(n) +
                                " rows, not more than P = " + std::to_string(p) + " parameters: use Backend::ntk");
  if (chunk_rows < 1) throw std::invalid_argument("ntk_chunked: chunk_rows must be positive");
  std::vector<NtkChunk> chunks;
  for (const bool collocation : {true, false}) {
    const int begin = collocation ? 0 : pts.nc, rows = collocation ? pts.nc : pts.nb, end = begin + rows;
    // A block of at most P rows is one piece (at most P x P): its kernel comes from its row Gram, as in be.ntk.
    const bool whole = rows <= p;
    const int step = whole ? rows : static_cast<int>(std::min<long>(chunk_rows, rows));
    for (int b = begin; b < end; b += step) chunks.push_back({b, std::min(step, end - b), collocation, whole});
  }
  return chunks;
}

NtkResult ntk_chunked(Backend& be, const Mlp& net, const PointSet& pts, const std::vector<double>& d, long chunk_rows) {
  return be.ntk_chunked(net, pts, d, chunk_rows);
}

NtkResult Backend::ntk_chunked(const Mlp& net, const PointSet& pts, const std::vector<double>& d, long chunk_rows) {
  Backend& be = *this;
  const int n = pts.size(), p = net.n_params();
  const std::vector<NtkChunk> chunks = ntk_chunks(pts, d, p, chunk_rows);
  NtkResult res;
  res.nc = pts.nc;
  res.nb = pts.nb;
  res.n_params = p;
  res.gram_trick = true;
  res.residuals.resize(n);
  // DESIGN.md section 8: G_u = Jh_u^T Jh_u and G_b = Jh_b^T Jh_b (Jh = D^1/2 J) by syrk with beta = 1, chunk by
  // chunk; with weights not constant on the blocks also J^T J and J^T D^2 J for ||K||_F.
  const bool blockwise = ntk_weights_blockwise(d, pts.nc);
  const size_t pp = static_cast<size_t>(p) * p;
  std::vector<double> Gu(pp, 0.0), Gb(pp, 0.0), A, B;
  if (!blockwise) {
    A.assign(pp, 0.0);
    B.assign(pp, 0.0);
  }
  struct Block {
    int rows;
    std::vector<double>* G;
    std::vector<double>* spectrum;
    double* frobenius;
  };
  const Block blocks[2] = {{pts.nc, &Gu, &res.spectrum_Kuu, &res.frobenius_Kuu},
                           {pts.nb, &Gb, &res.spectrum_Kbb, &res.frobenius_Kbb}};
  std::vector<double> J;
  long done = 0;
  for (const NtkChunk& ch : chunks) {
    work_progress("ntk: chunks of the Jacobian", done++, static_cast<long>(chunks.size()));
    const Block& blk = blocks[ch.collocation ? 0 : 1];
    const int b = ch.begin, c = ch.rows;
    J.resize(static_cast<size_t>(c) * p);
    be.residuals_jacobian(net, rows_of(pts, b, c, ch.collocation), span<double>(res.residuals.data() + b, c), J);
    if (!blockwise) be.gram_cols_accumulate(J, c, p, A);
    scale_rows_sqrt(J, d.data() + b, c, p);  // Jh
    be.gram_cols_accumulate(J, c, p, *blk.G);
    if (ch.whole) {
      const SymmetricSpectrum s = gram_spectrum(be, J, c, p);
      *blk.spectrum = s.eigenvalues;
      *blk.frobenius = s.frobenius;
    }
    if (!blockwise) {
      scale_rows_sqrt(J, d.data() + b, c, p);  // D J
      be.gram_cols_accumulate(J, c, p, B);
    }
  }
  std::vector<double>().swap(J);
  // ||K||_F^2 = <J^T J, J^T D^2 J>_F (DESIGN.md section 8). With D = d_u I on the collocation rows and d_b I on the
  // boundary rows, J^T J = G_u / d_u + G_b / d_b and J^T D^2 J = d_u G_u + d_b G_b, so
  //   ||K||_F^2 = ||G_u||_F^2 + ||G_b||_F^2 + (d_u / d_b + d_b / d_u) <G_u, G_b>_F.
  long double fk2 = 0.0L;
  if (blockwise) {
    fk2 = inner(Gu, Gu) + inner(Gb, Gb);
    if (pts.nc > 0 && pts.nb > 0) {
      const long double du = d[0], db = d[pts.nc];
      fk2 += (du / db + db / du) * inner(Gu, Gb);
    }
  } else {
    fk2 = inner(A, B);
    std::vector<double>().swap(A);
    std::vector<double>().swap(B);
  }
  res.frobenius_K = static_cast<double>(std::sqrt(fk2 > 0.0L ? fk2 : 0.0L));
  if (!std::isfinite(res.frobenius_K)) throw NumericalError(kNotFinite);
  for (const Block& blk : blocks)
    if (blk.rows > p) *blk.frobenius = checked_frobenius(*blk.G);
  // K_s's spectrum: the P eigenvalues of G_u + G_b = Jh^T Jh and N - P zeros (DESIGN.md section 3).
  std::vector<double> S(Gu);
  for (size_t q = 0; q < pp; ++q) S[q] += Gb[q];
  checked_frobenius(S);
  res.spectrum_K = padded_spectrum(be, S, p, n);
  std::vector<double>().swap(S);
  for (const Block& blk : blocks)
    if (blk.rows > p) *blk.spectrum = padded_spectrum(be, *blk.G, p, blk.rows);
  return res;
}

namespace {

// Numbers of a row of the points: x, alpha, beta, gamma, f, w, and its directions where it has its own.
double ntk_row_numbers(int dim, bool dirs) { return 3.0 * dim + 3.0 + (dirs ? static_cast<double>(dim) * dim : 0.0); }

}  // namespace

double ntk_rows_bytes(long nc, long nb, int dim, bool dirs) {
  return 8.0 * static_cast<double>(nc + nb) * (ntk_row_numbers(dim, dirs) + 4.0);
}

double ntk_chunked_memory_bytes(long nc, long nb, long p, int dim, long chunk_rows, bool blockwise, bool dirs) {
  const double dp = static_cast<double>(p), per_row = ntk_row_numbers(dim, dirs);
  const double grams = (blockwise ? 2.0 : 4.0) * dp * dp;
  // A block of at most P rows is held whole with its row Gram and the eigensolver's copy of it (LAPACKE's row-major
  // transpose); a longer one a chunk at a time, with the chunk's rows of the points.
  double piece = 0.0;
  for (const long rows : {nc, nb}) {
    const double held = static_cast<double>(rows <= p ? rows : std::min(chunk_rows, rows));
    piece = std::max(piece, held * (dp + per_row + 1.0) + (rows <= p ? 2.0 * held * held + held : 0.0));
  }
  // Then G_u, G_b, their sum and the eigensolver's copy of it with its workspace.
  const double finish = 4.0 * dp * dp + 3.0 * dp;
  return ntk_rows_bytes(nc, nb, dim, dirs) + 8.0 * std::max(grams + piece, finish);
}

long ntk_chunk_rows(long nc, long nb, long p, int dim, bool blockwise, double budget_bytes, bool dirs) {
  // The largest fitting count by bisection (the estimate grows with the count).
  long lo = 0, hi = std::min(kNtkMaxChunkRows, std::max(1L, std::max(nc, nb)));
  while (lo < hi) {
    const long mid = lo + (hi - lo + 1) / 2;
    if (ntk_chunked_memory_bytes(nc, nb, p, dim, mid, blockwise, dirs) <= budget_bytes) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

NtkPath parse_ntk_path(const std::string& text) {
  if (text == "auto") return NtkPath::Auto;
  if (text == "exact") return NtkPath::Exact;
  if (text == "chunked") return NtkPath::Chunked;
  throw UsageError("--ntk-path: unknown value '" + text + "' (known: auto, exact, chunked)");
}

NtkPlan plan_ntk(NtkPath path, long nc, long nb, long p, int dim, bool blockwise, long chunk_rows, bool save_matrices,
                 uint64_t budget, bool dirs, double exact_bytes) {
  if (chunk_rows < 0)
    throw UsageError("--chunk-rows must be 0 (from the memory budget) or positive, got " + std::to_string(chunk_rows));
  const long n = nc + nb;
  const std::string sizes = std::to_string(n) + " x " + std::to_string(p);
  if (path == NtkPath::Exact && chunk_rows > 0)
    throw UsageError("--chunk-rows is for the chunked path (--ntk-path chunked or auto)");
  if (path == NtkPath::Chunked && n <= p)
    throw UsageError("--ntk-path chunked needs more rows than parameters, the Jacobian is " + sizes +
                     " (use --ntk-path exact or auto)");
  if (path == NtkPath::Chunked && save_matrices)
    throw UsageError("--save-matrices writes the whole Jacobian: use --ntk-path exact or auto");
  const double have = static_cast<double>(budget != 0 ? budget : available_memory_bytes());
  const std::string of_budget = format_bytes(have) + (budget != 0 ? " of --memory-limit" : " available");
  const double formed = ntk_memory_bytes(n, p, save_matrices);
  const double exact = exact_bytes > 0.0 ? exact_bytes : formed;
  const bool without_j = exact < formed;  // the CPU's K_s from each layer's factors (ntk_exact_memory_bytes)
  NtkPlan plan;
  // Auto with N > P takes the chunked path whenever the weights are constant on each block: it forms one P x P Gram
  // per block (the one-shot path forms the whole one as well) and holds a chunk of J, not all of it (measured at
  // 4x40, N = 2^14 on 2 cores: 35 s and 0.7 GB against 54 s and 2.9 GB, benchmarks/peers/NTK_SCALE.md).
  plan.chunked =
      path == NtkPath::Chunked || (path == NtkPath::Auto && n > p && !save_matrices && (blockwise || exact > have));
  if (!plan.chunked) {
    require_memory(exact, budget, "ntk",
                   without_j ? "the " + std::to_string(n) + " x " + std::to_string(n) +
                                   " kernel and its blocks, built without the Jacobian, and the rows' channels"
                             : "the " + sizes + " Jacobian, its scaled copies and the Grams",
                   n > p && !save_matrices
                       ? "use --ntk-path auto or chunked, fewer points (--nc) or a smaller network, or raise "
                         "--memory-limit"
                       : "use fewer points (--nc) or a smaller network, or raise --memory-limit");
    plan.peak_bytes = exact;
    plan.reason = path == NtkPath::Exact ? "asked for by --ntk-path exact"
                  : n <= p               ? std::string("N <= P: the N x N kernel is the smaller form") +
                                 (without_j ? ", built without the Jacobian from each layer's factors" : "")
                  : save_matrices ? "--save-matrices writes the whole Jacobian"
                                  : "the one-shot " + sizes + " Jacobian and its Grams (about " + format_bytes(exact) +
                                        ") fit in the " + of_budget;
    return plan;
  }
  const long longest = std::max(nc, nb);
  plan.chunk_rows = chunk_rows > 0 ? std::min(chunk_rows, longest)
                                   : std::max(1L, ntk_chunk_rows(nc, nb, p, dim, blockwise, have, dirs));
  plan.peak_bytes = ntk_chunked_memory_bytes(nc, nb, p, dim, plan.chunk_rows, blockwise, dirs);
  // Which part dominates decides the advice: the points' rows (N of them, held throughout) or the P x P Grams.
  const double rows_bytes = ntk_rows_bytes(nc, nb, dim, dirs);
  const bool rows_most = 2.0 * rows_bytes >= plan.peak_bytes;
  require_memory(plan.peak_bytes, budget, "ntk",
                 "the chunked path: the " + std::to_string(n) + " points' rows (" + format_bytes(rows_bytes) +
                     ") and P x P Grams with " + std::to_string(plan.chunk_rows) + " row" +
                     (plan.chunk_rows == 1 ? "" : "s") + " of the Jacobian at a time, P = " + std::to_string(p),
                 rows_most        ? "use fewer points (--nc) or raise --memory-limit"
                 : chunk_rows > 0 ? "use fewer --chunk-rows or a smaller network, or raise --memory-limit"
                                  : "use a smaller network or raise --memory-limit");
  plan.reason = (path == NtkPath::Chunked ? std::string("asked for by --ntk-path chunked")
                 : exact > have           ? "the one-shot " + sizes + " Jacobian and its Grams would need about " +
                                      format_bytes(exact) + ", more than the " + of_budget
                                : "N > P: the one-shot " + sizes + " Jacobian (about " + format_bytes(exact) +
                                      ") is not needed, the block Grams give the same numbers with less work") +
                ": P x P Grams accumulated over chunks of " + std::to_string(plan.chunk_rows) + " rows";
  return plan;
}

std::vector<double> ntk_matrix(Backend& be, const std::vector<double>& J, int n, int p, const std::vector<double>& d) {
  std::vector<double> K(static_cast<size_t>(n) * n);
  be.gram_rows(J, n, p, K);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) K[static_cast<size_t>(i) * n + k] *= d[k];
  return K;
}

}  // namespace pinntk
