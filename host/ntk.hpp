// NTK analysis (paper Lemma 3.1, DESIGN.md section 3): residual Jacobian, the kernel K = J J^T D, its blocks,
// Frobenius norms and spectra.
#pragma once

#include <cstdint>   // uint64_t
#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

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

// The NtkResult's spectra and norms from K_s = D^1/2 J J^T D^1/2 (n x n, moved in; weights d > 0, the first nc rows
// collocation): its spectrum, K_uu and K_bb as its diagonal blocks, ||J J^T D||_F as ||D^-1/2 K_s D^1/2||_F. The
// residuals and sizes are the caller's.
void ntk_from_sample_gram(Backend& be, std::vector<double>&& Ks, const std::vector<double>& d, int nc, NtkResult& res);

// Row i of the row-major A (n x p) times sqrt(d[i]): Jh = D^1/2 J in place (DESIGN.md section 3).
void scale_rows_sqrt(std::vector<double>& A, const double* d, int n, int p);

// Peak host memory in bytes of be.ntk on n rows and p parameters (and of writing J and K when save_matrices).
double ntk_memory_bytes(long n, long p, bool save_matrices);
// The same for net on pts, on the CPU backend when cpu: where it builds K_s without J (N <= P, a layer wide enough,
// no matrices to write; Backend::residuals_sample_gram) the N x N Grams, the rows' channels and the passes' buffers;
// else ntk_memory_bytes, on the CPU with the buffers of its batched Jacobian pass.
double ntk_exact_memory_bytes(const Mlp& net, const PointSet& pts, bool save_matrices, bool cpu);
// Whether every row weight is positive (K = J J^T D then follows from K_s = D^1/2 J J^T D^1/2).
bool all_positive(const std::vector<double>& d);
// Where the CPU backend builds K_s with row weights d without J (cpu; weights positive; a layer wide enough,
// Backend::residuals_sample_gram): the bytes it holds beyond K_s (the rows' channels, the block Grams, the passes'
// buffers). Empty where it forms J instead.
std::optional<double> cpu_sample_gram_bytes(const Mlp& net, const PointSet& pts, const std::vector<double>& d,
                                            bool cpu);
// Host memory of Backend::kernel_buffer's K = J J^T D (row weights d) on the CPU backend when cpu: K alone with the
// rows' channels where it builds K_s without J (positive weights, a layer wide enough), else J and K (and on the CPU
// the buffers of its batched Jacobian pass).
double kernel_memory_bytes(const Mlp& net, const PointSet& pts, const std::vector<double>& d, bool cpu);

// The paper's NTK K = J J^T D (Lemma 3.1; not symmetric when the weights of the two blocks differ): n x n row-major
// from the row-major n x p Jacobian J and the row weights d.
std::vector<double> ntk_matrix(Backend& be, const std::vector<double>& J, int n, int p, const std::vector<double>& d);

// be.ntk with the row weights of the chosen scaling, or ntk_chunked with chunk_rows rows when chunk_rows > 0 (then
// keep_jacobian must be false); NumericalError when the kernel is not finite.
NtkResult analyze_ntk(Backend& be, const Mlp& net, const PointSet& pts, NtkScaling scaling, bool keep_jacobian,
                      long chunk_rows = 0);

// The row weights D of the chosen scaling.
std::vector<double> ntk_row_weights(const PointSet& pts, NtkScaling scaling);

// The NTK by Grams accumulated over chunks of rows (DESIGN.md section 8), for N > P: no more than chunk_rows x P of
// the Jacobian is held at once (a block of collocation or boundary rows of at most P rows is held whole: its kernel
// comes from its row Gram). The numbers are those of be.ntk up to rounding, with gram_trick set; no Jacobian is
// kept. With d constant and positive on each block, two P x P Grams G_u = Jh_u^T Jh_u and G_b = Jh_b^T Jh_b
// (Jh = D^1/2 J) suffice; other weights add J^T J and J^T D^2 J for ||K||_F. std::invalid_argument on
// inconsistent sizes or N <= P, NumericalError when a Gram is not finite. Calls be.ntk_chunked: the default
// (host/ntk.cpp) drives the backend's batch operations on host arrays; the CUDA backend keeps the rows, the chunk's
// Jacobian and the Grams on the device.
NtkResult ntk_chunked(Backend& be, const Mlp& net, const PointSet& pts, const std::vector<double>& d, long chunk_rows);

// One piece of ntk_chunked's pass over the rows: rows [begin, begin + rows) of the collocation or the boundary block,
// never both; `whole` when the block has at most P rows and is this one piece (its kernel from its row Gram).
struct NtkChunk {
  int begin = 0, rows = 0;
  bool collocation = true, whole = false;
};
// ntk_chunked's pieces in order for p parameters (every backend's override takes the same), after its checks:
// std::invalid_argument on inconsistent sizes, N <= P or chunk_rows < 1.
std::vector<NtkChunk> ntk_chunks(const PointSet& pts, const std::vector<double>& d, int p, long chunk_rows);

// Whether d is constant and positive on each nonempty block (rows [0, nc) and [nc, N)): ntk_chunked's two-Gram form.
bool ntk_weights_blockwise(const std::vector<double>& d, int nc);

// Peak host memory in bytes of ntk_chunked on the CPU backend with nc + nb rows in dim coordinates, p parameters
// and chunks of chunk_rows rows (blockwise: ntk_weights_blockwise of the weights; dirs: the rows carry their own
// directions, dim x dim numbers each). A device backend's default gram_cols_accumulate adds a p x p temporary.
double ntk_chunked_memory_bytes(long nc, long nb, long p, int dim, long chunk_rows, bool blockwise, bool dirs = false);
// Its share that does not depend on P or the chunks: the points, the weights, the residuals and the spectra of K,
// K_uu and K_bb (held throughout the run).
double ntk_rows_bytes(long nc, long nb, int dim, bool dirs = false);

// The most rows per chunk, up to kNtkMaxChunkRows and the largest block, whose ntk_chunked_memory_bytes fits
// budget_bytes; 0 when not even one row does.
constexpr long kNtkMaxChunkRows = 4096;  // beyond a few hundred rows syrk runs at its full rate
long ntk_chunk_rows(long nc, long nb, long p, int dim, bool blockwise, double budget_bytes, bool dirs = false);

// Which path `pinntk ntk` takes: the one-shot be.ntk (exact), the chunked Grams, or auto: chunked when N > P and the
// weights are constant on each block (less work and memory), else exact while it fits the memory.
enum class NtkPath { Auto, Exact, Chunked };
NtkPath parse_ntk_path(const std::string& text);

struct NtkPlan {
  bool chunked = false;
  long chunk_rows = 0;      // rows of J per chunk (chunked path), else 0
  double peak_bytes = 0.0;  // the estimate of the chosen path's peak host memory
  std::string reason;       // one sentence: why this path
};
// The path for N = nc + nb rows and p parameters within the memory budget (bytes; 0: the available memory, as
// require_memory) and chunks of chunk_rows rows (0: from the budget). UsageError (one line) when the chosen path does
// not fit, chunked is asked for with N <= P or with save_matrices, or chunk_rows < 0. exact_bytes: the one-shot
// path's estimate where the caller knows the network and backend (ntk_exact_memory_bytes); 0: ntk_memory_bytes.
NtkPlan plan_ntk(NtkPath path, long nc, long nb, long p, int dim, bool blockwise, long chunk_rows, bool save_matrices,
                 uint64_t budget, bool dirs = false, double exact_bytes = 0.0);

}  // namespace pinntk
