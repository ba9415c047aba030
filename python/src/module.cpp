// pinntk._core: the compiled part of the Python package pinntk (python/pinntk), a thin layer of nanobind bindings over
// the library the CLI uses (host/*.hpp). Every computation is a call of the same library function that
// host/cli/main.cpp calls; this file only converts arguments and results (numpy arrays, dicts) and maps errors:
// UsageError -> pinntk.UsageError (a ValueError), NumericalError -> pinntk.NumericalError (an ArithmeticError).
// The Python package (python/pinntk/__init__.py) adds defaults, docstrings, progress bars and PyTorch conversion.
#include <nanobind/nanobind.h>        // nb::module_, nb::class_
#include <nanobind/ndarray.h>         // nb::ndarray
#include <nanobind/stl/filesystem.h>  // std::filesystem::path arguments (str or os.PathLike)
#include <nanobind/stl/optional.h>    // std::optional arguments
#include <nanobind/stl/pair.h>        // std::pair arguments
#include <nanobind/stl/string.h>      // std::string arguments
#include <nanobind/stl/tuple.h>       // std::tuple results
#include <nanobind/stl/unique_ptr.h>  // std::unique_ptr
#include <nanobind/stl/vector.h>      // std::vector arguments

#include <algorithm>          // std::copy
#include <chrono>             // std::chrono
#include <cmath>              // std::ceil, std::isfinite
#include <cstdint>            // uintptr_t
#include <filesystem>         // std::filesystem::path
#include <fstream>            // std::ofstream
#include <limits>             // std::numeric_limits
#include <map>                // std::map
#include <memory>             // std::unique_ptr
#include <mutex>              // std::mutex
#include <nlohmann/json.hpp>  // nlohmann::json
#include <optional>           // std::optional
#include <sstream>            // std::ostringstream
#include <string>             // std::string
#include <vector>             // std::vector

#include "common/errors.hpp"                  // UsageError, NumericalError
#include "host/backend.hpp"                   // make_backend, Backend, cuda_device_count, device_is_cpu
#include "host/cpu_batched.hpp"               // batched_workspace_bytes
#include "host/ensemble.hpp"                  // train_ensemble, MemberTraining, EnsembleHooks
#include "host/io/files.hpp"                  // replace_file
#include "host/io/output_dir.hpp"             // OutputDir
#include "host/memory.hpp"                    // parse_bytes, available_memory_bytes
#include "host/mlp.hpp"                       // Mlp, init_mlp, load_checkpoint, checkpoint_json
#include "host/ntk.hpp"                       // analyze_ntk, plan_ntk, ntk_row_weights, ntk_exact_memory_bytes, ...
#include "host/ntk_history.hpp"               // NtkRecorder, check_ntk_every, plan_ntk_every
#include "host/ntk_lanczos.hpp"               // ntk_top_eigen, ntk_spectral_density, DensityConfig
#include "host/optim/lm_continuation.hpp"     // continue_with_lm, LmStage
#include "host/parse.hpp"                     // parse_layers, parse_schedule, parse_real, parse_box, parse_domain
#include "host/problem.hpp"                   // problem_preset, build_points, validate, uses_eps
#include "host/problemfile/problem_file.hpp"  // load_problem_file, problem_check_report
#include "host/report.hpp"                    // index_markdown
#include "host/reproduce.hpp"                 // reproduce, reproduce_figures
#include "host/run_setup.hpp"  // apply_problem_overrides, check_train_choices, lm_stages, ntk_matrix, reproduce_into
#include "host/timing.hpp"     // seconds_since
#include "host/train.hpp"      // train_adam, TrainConfig

namespace nb = nanobind;
using nlohmann::json;

namespace pinntk {
namespace {

// A progress callback asked the run to stop (Ctrl-C, or an exception raised by the user's callback): thrown from a
// library callback to leave train_adam; never crosses into Python.
struct Interrupted {};

using Array1 = nb::ndarray<nb::numpy, double, nb::ndim<1>>;

// A host vector handed to numpy without a copy: the array owns it through a capsule.
template <class T>
nb::object to_numpy(std::vector<T>&& v, std::vector<size_t> shape) {
  auto* p = new std::vector<T>(std::move(v));
  nb::capsule owner(p, [](void* q) noexcept { delete static_cast<std::vector<T>*>(q); });
  return nb::cast(nb::ndarray<nb::numpy, T>(p->data(), shape.size(), shape.data(), owner));
}
template <class T>
nb::object to_numpy(const std::vector<T>& v) {
  return to_numpy(std::vector<T>(v), {v.size()});
}

// A numpy array that cannot be written: a Problem's rows are fixed when it is made, so an edit would be ignored.
nb::object read_only(nb::object a) {
  a.attr("setflags")(nb::arg("write") = false);
  return a;
}

// A problem: the spec (preset or file, with the caller's overrides) and its training rows, built once.
struct Problem {
  ProblemSpec spec;
  PointSet pts;
};

// The keywords of Problem.preset and Problem.from_file as the CLI's overrides (ProblemOverrides takes the point seed
// as its decimal text, as --point-seed).
// Counts and the seed arrive as Python integers of any size: out of range is one line, not nanobind's signature list.
std::optional<int> count_of(std::optional<int64_t> v, const char* name) {
  if (v && (*v < 0 || *v > std::numeric_limits<int>::max()))
    throw UsageError(std::string(name) + " must lie in [0, " + std::to_string(std::numeric_limits<int>::max()) +
                     "], got " + std::to_string(*v));
  return v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt;
}

std::optional<uint64_t> seed_of(const std::optional<nb::int_>& v, const char* name) {
  if (!v) return std::nullopt;
  const unsigned long long s = PyLong_AsUnsignedLongLong(v->ptr());
  if (s == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw UsageError(std::string(name) + " must be an integer in [0, 2^64 - 1], got " +
                     nb::cast<std::string>(nb::str(*v)));
  }
  return s;
}

ProblemOverrides overrides(std::optional<double> eps, std::optional<int64_t> nc, std::optional<int64_t> nb,
                           std::optional<double> lambda, std::optional<double> omega, std::optional<std::string> grid,
                           std::optional<std::string> domain, std::optional<std::string> boundary,
                           const std::optional<std::filesystem::path>& points,
                           const std::optional<nb::int_>& point_seed_arg) {
  const std::optional<uint64_t> point_seed = seed_of(point_seed_arg, "point_seed");
  ProblemOverrides o;
  o.eps = eps;
  o.nc = count_of(nc, "nc");
  o.nb = count_of(nb, "nb");
  o.lambda = lambda;
  o.omega = omega;
  o.grid = std::move(grid);
  o.domain = std::move(domain);
  o.boundary = std::move(boundary);
  if (points) o.points = points->string();
  if (point_seed) o.point_seed = std::to_string(*point_seed);
  return o;
}

// A problem with the overrides applied by the CLI's own apply_problem_overrides (host/run_setup.hpp; messages name
// the keywords), checked, and its rows.
Problem make_problem(ProblemSpec spec, const ProblemOverrides& o) {
  apply_problem_overrides(spec, o, Naming{false});
  validate(spec);
  Problem p;
  p.spec = std::move(spec);
  p.pts = build_points(p.spec);
  return p;
}

// A network every call can use: an Mlp made by Mlp() alone (the wrapper's placeholder) has no layers.
void require_network(const Mlp& net) {
  if (net.layers.size() < 2)
    throw UsageError("the network has no layers (an empty Mlp): make one with pinntk.Mlp(layers) or Mlp.load(path)");
  for (int w : net.layers)
    if (w < 1) throw UsageError("the network has a layer of width " + std::to_string(w));
  if (net.theta.size() != static_cast<size_t>(net.n_params()))
    throw UsageError("the network holds " + std::to_string(net.theta.size()) + " parameters, its layers need " +
                     std::to_string(net.n_params()));
  for (size_t k = 0; k < net.theta.size(); ++k)
    if (!std::isfinite(net.theta[k]))
      throw UsageError("the network's parameter theta[" + std::to_string(k) + "] is " + std::to_string(net.theta[k]) +
                       ": every parameter must be a finite number");
}

// The network must take the problem's coordinates (make_setup's check).
void check_net(const Problem& p, const Mlp& net) {
  require_network(net);
  if (net.layers.front() != p.spec.dim)
    throw UsageError("the network's input width is " + std::to_string(net.layers.front()) + ", problem " + p.spec.name +
                     " has dimension " + std::to_string(p.spec.dim));
}

std::string join(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// Backends are made once per (device, precision, threads) and kept: a CUDA context and its handles cost far more
// than a small NTK. One call at a time uses them (the mutex), with the GIL released.
std::recursive_mutex g_backend_mutex;  // recursive: a progress callback may call evaluate or ntk
Backend& backend(const std::string& device, const std::string& precision, int threads) {
  if (threads < 0 || threads > 4096) throw UsageError("threads must lie in [0, 4096] (0: all cores)");
  static std::map<std::string, std::unique_ptr<Backend>> cache;
  const std::string key = device + "/" + precision + "/" + std::to_string(threads);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make_backend(device, precision, threads)).first;
  return *it->second;
}

// Runs f(backend) on the shared backend of (device, precision, threads) with the GIL released and the backends
// locked; device_name and precision_name get the backend's own names.
template <class F>
void on_backend(const std::string& device, const std::string& precision, int threads, std::string& device_name,
                std::string& precision_name, F&& f) {
  nb::gil_scoped_release release;
  std::lock_guard<std::recursive_mutex> lock(g_backend_mutex);
  Backend& be = backend(device, precision, threads);
  device_name = be.name();
  precision_name = be.precision();
  f(be);
}

// ---- Mlp -----------------------------------------------------------------------------------------------------------

Mlp new_mlp(const std::vector<int>& layers, const std::string& init, uint64_t seed) {
  if (layers.empty()) throw UsageError("layers: give the widths, e.g. [1, 50, 1]");
  return init_mlp(parse_layers(join(layers)), init, seed);  // parse_layers checks the shape as --layers does
}

void set_theta(Mlp& net, nb::ndarray<const double, nb::ndim<1>, nb::device::cpu> a) {
  if (a.shape(0) != net.theta.size())
    throw UsageError("theta: expected " + std::to_string(net.theta.size()) + " parameters, got " +
                     std::to_string(a.shape(0)));
  auto v = a.view();
  for (size_t i = 0; i < net.theta.size(); ++i) net.theta[i] = v(i);
}

// u, D_i u, D_i^2 u of the network at the points x: (N,) or (N, n) in, u (N,), du and d2u (N,) or (N, n) out.
std::tuple<nb::object, nb::object, nb::object> evaluate(const Mlp& net,
                                                        nb::ndarray<const double, nb::c_contig, nb::device::cpu> x,
                                                        const std::string& device, int threads) {
  require_network(net);
  const size_t dim = static_cast<size_t>(net.layers.front());
  const bool flat = x.ndim() == 1;
  if (!(x.ndim() == 2 && x.shape(1) == dim) && !(flat && dim == 1))
    throw UsageError("x: expected shape (N, " + std::to_string(dim) + ")" + (dim == 1 ? " or (N,)" : "") +
                     " for a network with " + std::to_string(dim) + " inputs");
  const size_t n = x.shape(0);
  std::vector<double> xs(x.data(), x.data() + n * dim), u(n), du(n * dim), d2u(n * dim);
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::recursive_mutex> lock(g_backend_mutex);
    backend(device, "fp64", threads).evaluate(net, xs, u, du, d2u);
  }
  std::vector<size_t> shape = flat ? std::vector<size_t>{n} : std::vector<size_t>{n, dim};
  return {to_numpy(std::move(u), {n}), to_numpy(std::move(du), shape), to_numpy(std::move(d2u), shape)};
}

// ---- NTK -----------------------------------------------------------------------------------------------------------

// A matrix the backend left where it computed it, as a Python array that owns it, without a copy: numpy on the
// CPU; elsewhere nanobind's array-API object (__dlpack__ and __dlpack_device__: torch.from_dlpack, cupy.from_dlpack
// and JAX take it as it is, any number of times; not a one-use capsule). Column-major buffers get Fortran strides.
nb::object matrix_object(MatrixBuffer&& b, uintptr_t* address) {
  auto* held = new MatrixBuffer(std::move(b));
  nb::capsule owner(held, [](void* q) noexcept {
    auto* h = static_cast<MatrixBuffer*>(q);
    try {
      if (h->release) h->release();
    } catch (...) {  // nothing may leave a capsule's destructor
    }
    delete h;
  });
  *address = reinterpret_cast<uintptr_t>(held->data);
  const size_t shape[2] = {held->rows, held->cols};
  const int64_t fortran[2] = {1, static_cast<int64_t>(held->rows)};
  const int64_t* strides = held->column_major ? fortran : nullptr;
  const nb::dlpack::dtype dt = held->bits == 32 ? nb::dtype<float>() : nb::dtype<double>();
  if (held->device_type == nb::device::cpu::value)
    return nb::cast(
        nb::ndarray<nb::numpy>(held->data, 2, shape, owner, strides, dt, held->device_type, held->device_id));
  return nb::cast(
      nb::ndarray<nb::array_api>(held->data, 2, shape, owner, strides, dt, held->device_type, held->device_id));
}

// The residuals and the Jacobian (what) or the kernel K = J J^T D (Lemma 3.1) where the backend computed it,
// without a copy (matrix_object); data_ptr is its address, to check that no copy was made.
nb::dict device_matrix(const Problem& prob, const Mlp& net, const std::string& what, const std::string& device,
                       const std::string& precision, int threads, const std::string& scaling_name,
                       const std::string& memory_limit) {
  check_net(prob, net);
  const PointSet& pts = prob.pts;
  const size_t n = pts.size(), p = net.n_params();
  const bool kernel = what == "K";
  const NtkScaling scaling = parse_ntk_scaling(scaling_name);  // checked for J too
  const std::vector<double> d = kernel ? ntk_row_weights(pts, scaling) : std::vector<double>{};
  const uint64_t budget = memory_limit.empty() ? 0 : parse_bytes(memory_limit, "memory_limit");
  std::vector<double> r(n);
  MatrixBuffer b;
  std::string device_name, precision_name;
  // The host holds J (and K; for K of a network with a wide layer, K and the rows' channels) on the CPU backend; on
  // CUDA the backend checks the device's free memory.
  if (device_is_cpu(device)) {
    const double need =
        kernel ? kernel_memory_bytes(net, pts, d, true)
               : 8.0 * static_cast<double>(n) * static_cast<double>(p) + batched_workspace_bytes(net, pts, threads);
    require_memory(need, budget, kernel ? "kernel" : "jacobian", kernel ? "J and K" : "the Jacobian",
                   "use fewer points, or pinntk.ntk, whose chunked path never holds J");
  }
  on_backend(device, precision, threads, device_name, precision_name,
             [&](Backend& be) { b = kernel ? be.kernel_buffer(net, pts, d, r) : be.jacobian_buffer(net, pts, r); });
  uintptr_t address = 0;
  nb::dict out;
  out[kernel ? "K" : "J"] = matrix_object(std::move(b), &address);
  out["residuals"] = to_numpy(std::move(r), {n});
  out["data_ptr"] = address;
  out["device"] = device_name;
  out["precision"] = precision_name;
  out["nc"] = pts.nc;
  out["nb"] = pts.nb;
  out["n_params"] = static_cast<long>(p);
  if (kernel) out["weights"] = to_numpy(d);
  return out;
}

// cmd_ntk of host/cli/main.cpp with the full analysis (--eigen exact): plan_ntk, analyze_ntk, and with save_matrices
// J, K = J J^T D, the residuals and the points.
nb::dict ntk(const Problem& prob, const Mlp& net, const std::string& device, const std::string& precision, int threads,
             const std::string& scaling_name, const std::string& path_name, long chunk_rows,
             const std::string& memory_limit, bool save_matrices) {
  const auto t0 = std::chrono::steady_clock::now();
  check_net(prob, net);
  const NtkScaling scaling = parse_ntk_scaling(scaling_name);
  const NtkPath path = parse_ntk_path(path_name);
  const uint64_t budget = memory_limit.empty() ? 0 : parse_bytes(memory_limit, "memory_limit");
  const PointSet& pts = prob.pts;
  const int n = pts.size(), p = net.n_params();
  if (save_matrices && static_cast<double>(n) * n * 8 > 4e9)
    throw UsageError("save_matrices: K would take more than 4 GB; use fewer points");
  const std::vector<double> d = ntk_row_weights(pts, scaling);
  const NtkPlan plan =
      plan_ntk(path, pts.nc, pts.nb, p, pts.dim, ntk_weights_blockwise(d, pts.nc), chunk_rows, save_matrices, budget,
               pts.has_directions(), ntk_exact_memory_bytes(net, pts, save_matrices, device_is_cpu(device)));
  NtkResult r;
  std::vector<double> K;
  std::string device_name, precision_name;
  on_backend(device, precision, threads, device_name, precision_name, [&](Backend& be) {
    r = analyze_ntk(be, net, pts, scaling, save_matrices, plan.chunk_rows);
    if (save_matrices) K = ntk_matrix(be, r.jacobian, n, p, d);  // K = J J^T D (Lemma 3.1)
  });
  nb::dict out;
  out["nc"] = r.nc;
  out["nb"] = r.nb;
  out["n_params"] = r.n_params;
  out["gram_trick"] = r.gram_trick;
  out["frobenius_K"] = r.frobenius_K;
  out["frobenius_Kuu"] = r.frobenius_Kuu;
  out["frobenius_Kbb"] = r.frobenius_Kbb;
  out["spectrum_K"] = to_numpy(std::move(r.spectrum_K), {static_cast<size_t>(r.spectrum_K.size())});
  out["spectrum_Kuu"] = to_numpy(std::move(r.spectrum_Kuu), {static_cast<size_t>(r.spectrum_Kuu.size())});
  out["spectrum_Kbb"] = to_numpy(std::move(r.spectrum_Kbb), {static_cast<size_t>(r.spectrum_Kbb.size())});
  out["residuals"] = to_numpy(std::move(r.residuals), {static_cast<size_t>(n)});
  out["weights"] = to_numpy(d);
  out["path"] = plan.chunked ? "chunked" : "exact";
  out["path_reason"] = plan.reason;
  out["chunk_rows"] = plan.chunk_rows;
  out["peak_memory_bytes_estimate"] = plan.peak_bytes;
  out["scaling"] = ntk_scaling_name(scaling);
  out["device"] = device_name;
  out["precision"] = precision_name;
  if (save_matrices) {
    out["J"] = to_numpy(std::move(r.jacobian), {static_cast<size_t>(n), static_cast<size_t>(p)});
    out["K"] = to_numpy(std::move(K), {static_cast<size_t>(n), static_cast<size_t>(n)});
    out["points"] = to_numpy(std::vector<double>(pts.x), {static_cast<size_t>(n), static_cast<size_t>(pts.dim)});
  } else {
    out["J"] = nb::none();
    out["K"] = nb::none();
    out["points"] = nb::none();
  }
  out["wall_time_s"] = seconds_since(t0);
  return out;
}

uint64_t memory_budget(const std::string& memory_limit) {
  return memory_limit.empty() ? 0 : parse_bytes(memory_limit, "memory_limit");
}

// cmd_ntk_top of host/cli/main.cpp (`pinntk ntk --eigen top:K [--save-vectors]`): check_ntk_top, then ntk_top_eigen.
nb::dict ntk_top(const Problem& prob, const Mlp& net, long k, bool vectors, const std::string& device,
                 const std::string& precision, int threads, const std::string& scaling_name, double tol,
                 const std::string& memory_limit) {
  const auto t0 = std::chrono::steady_clock::now();
  check_net(prob, net);
  const NtkScaling scaling = parse_ntk_scaling(scaling_name);
  if (!(tol > 0.0) || !std::isfinite(tol)) throw UsageError("tol must be positive and finite");
  const uint64_t budget = memory_budget(memory_limit);
  const PointSet& pts = prob.pts;
  const long p = net.n_params();
  check_ntk_top(k, net, pts, threads, vectors, budget, Naming{false});  // k within [1, min(N, P)], the memory
  const std::vector<double> d = ntk_row_weights(pts, scaling);
  TopEigen t;
  std::string device_name, precision_name;
  on_backend(device, precision, threads, device_name, precision_name,
             [&](Backend& be) { t = ntk_top_eigen(be, net, pts, d, static_cast<int>(k), vectors, tol); });
  nb::dict out;
  out["values"] = to_numpy(std::move(t.values), {static_cast<size_t>(k)});
  if (vectors) {
    out["vectors"] = to_numpy(std::move(t.vectors), {static_cast<size_t>(t.dim), static_cast<size_t>(k)});
    out["vectors_of"] = t.gram ? "Jh^T Jh (P x P): parameter space" : "K_s (N x N)";
  } else {
    out["vectors"] = nb::none();
    out["vectors_of"] = nb::none();
  }
  out["k"] = k;
  out["dim"] = t.dim;
  out["gram"] = t.gram;
  out["operator"] = t.op;
  out["method"] = k == t.dim ? "dense (every eigenvalue: the operator's columns, Eigen SelfAdjointEigenSolver)"
                             : "lanczos (Spectra SymEigsSolver)";
  out["products"] = t.products;
  out["converged"] = t.converged;
  out["tol"] = tol;
  out["nc"] = pts.nc;
  out["nb"] = pts.nb;
  out["n_params"] = p;
  out["weights"] = to_numpy(d);
  out["scaling"] = ntk_scaling_name(scaling);
  out["device"] = device_name;
  out["precision"] = precision_name;
  out["wall_time_s"] = seconds_since(t0);
  return out;
}

// cmd_ntk_density of host/cli/main.cpp (`pinntk ntk --eigen density`): check_density_settings,
// check_ntk_density_memory, then ntk_spectral_density.
nb::dict ntk_density(const Problem& prob, const Mlp& net, int probes, int steps, int bins, uint64_t seed,
                     const std::string& device, const std::string& precision, int threads,
                     const std::string& scaling_name, const std::string& memory_limit) {
  const auto t0 = std::chrono::steady_clock::now();
  check_net(prob, net);
  const NtkScaling scaling = parse_ntk_scaling(scaling_name);
  DensityConfig cfg;
  cfg.probes = probes;
  cfg.steps = steps;
  cfg.bins = bins;
  cfg.seed = seed;
  check_density_settings(cfg, Naming{false});
  const uint64_t budget = memory_budget(memory_limit);
  const PointSet& pts = prob.pts;
  check_ntk_density_memory(cfg, net, pts, threads, budget, Naming{false});
  const std::vector<double> d = ntk_row_weights(pts, scaling);
  NtkDensity r;
  std::string device_name, precision_name;
  on_backend(device, precision, threads, device_name, precision_name,
             [&](Backend& be) { r = ntk_spectral_density(be, net, pts, d, cfg); });
  double total = r.below;
  for (const double c : r.counts) total += c;
  nb::dict out;
  out["edges"] = to_numpy(std::move(r.edges), {static_cast<size_t>(cfg.bins) + 1});
  out["counts"] = to_numpy(std::move(r.counts), {static_cast<size_t>(cfg.bins)});
  out["nodes"] = to_numpy(std::move(r.nodes), {r.nodes.size()});
  out["weights"] = to_numpy(std::move(r.weights), {r.weights.size()});
  out["below"] = r.below;
  out["known_zeros"] = r.zeros;
  out["total"] = total;
  out["lambda_max"] = r.lambda_max;
  out["n"] = r.n;
  out["dim"] = r.dim;
  out["probes"] = cfg.probes;
  out["steps_asked"] = cfg.steps;
  out["steps"] = r.steps;
  out["steps_capped"] = r.steps_capped;
  out["bins"] = cfg.bins;
  out["decades"] = cfg.decades;
  out["probe_seed"] = cfg.seed;
  out["breakdowns"] = r.breakdowns;
  out["products"] = r.products;
  out["gram"] = r.gram;
  out["operator"] = r.op;
  out["method"] = "stochastic Lanczos quadrature (Rademacher probes, full reorthogonalization, LAPACKE_dstev)";
  out["nc"] = pts.nc;
  out["nb"] = pts.nb;
  out["n_params"] = net.n_params();
  out["scaling"] = ntk_scaling_name(scaling);
  out["device"] = device_name;
  out["precision"] = precision_name;
  out["wall_time_s"] = seconds_since(t0);
  return out;
}

// ---- training ------------------------------------------------------------------------------------------------------

nb::dict history_dict(const std::vector<HistoryRow>& h) {
  std::vector<long> it;
  std::vector<double> lr, loss, pde, bnd, maxe, rel, t;
  nb::list opt;
  for (const HistoryRow& r : h) {
    it.push_back(r.iteration);
    opt.append(r.optimizer);
    lr.push_back(r.lr);
    loss.push_back(r.loss);
    pde.push_back(r.loss_pde);
    bnd.push_back(r.loss_boundary);
    maxe.push_back(r.max_error);
    rel.push_back(r.rel_l2_error);
    t.push_back(r.time_s);
  }
  nb::dict d;
  d["iteration"] = to_numpy(it);
  d["optimizer"] = opt;
  d["lr"] = to_numpy(lr);
  d["loss"] = to_numpy(loss);
  d["loss_pde"] = to_numpy(pde);
  d["loss_boundary"] = to_numpy(bnd);
  d["max_error"] = to_numpy(maxe);
  d["rel_l2_error"] = to_numpy(rel);
  d["time_s"] = to_numpy(t);
  return d;
}

// train(ntk_every=K)'s rows as ntk_history.csv's columns (NaN in a row whose kernel was not finite).
nb::dict ntk_history_dict(const std::vector<NtkHistoryRow>& rows) {
  std::vector<long> it;
  for (const NtkHistoryRow& r : rows) it.push_back(r.iteration);
  nb::dict d;
  d["iteration"] = to_numpy(it);
  for (const NtkHistoryColumn& c : kNtkHistoryColumn) {
    std::vector<double> v;
    for (const NtkHistoryRow& r : rows)
      v.push_back(!c.kernel || r.computed ? r.*c.field : std::numeric_limits<double>::quiet_NaN());
    d[c.name] = to_numpy(v);
  }
  return d;
}

nb::dict lm_dict(const LmTrainResult& lm, const std::vector<LmStage>& stages) {
  std::vector<long> stage, it, accepted;
  std::vector<double> eps, loss, mu, rho, cond;
  nb::list summaries;
  for (size_t s = 0; s < lm.stages.size(); ++s) {
    const LmResult& r = lm.stages[s];
    for (const LmRow& row : r.rows) {
      stage.push_back(static_cast<long>(s));
      eps.push_back(stages[s].eps);
      it.push_back(row.iteration);
      loss.push_back(row.loss);
      mu.push_back(row.mu);
      rho.push_back(row.rho);
      accepted.push_back(row.accepted ? 1 : 0);
      cond.push_back(row.cond);
    }
    nb::dict st;
    st["eps"] = stages[s].eps;
    st["iterations"] = r.iterations;
    st["accepted"] = r.accepted;
    st["rejected"] = r.rejected;
    st["cholesky_failures"] = r.cholesky_failures;
    st["loss"] = r.loss;
    st["mu"] = r.mu;
    st["form"] = r.form;
    st["stop"] = r.stop;
    summaries.append(st);
  }
  nb::dict d;
  d["stages"] = summaries;
  d["iterations"] = lm.iterations;
  d["wall_time_s"] = lm.wall_time_s;
  nb::dict rows;
  rows["stage"] = to_numpy(stage);
  rows["eps"] = to_numpy(eps);
  rows["iteration"] = to_numpy(it);
  rows["loss"] = to_numpy(loss);
  rows["mu"] = to_numpy(mu);
  rows["rho"] = to_numpy(rho);
  rows["accepted"] = to_numpy(accepted);
  rows["cond"] = to_numpy(cond);
  d["history"] = rows;
  return d;
}

// What the progress callbacks share: whether to stop, and the Python error that asked for it.
struct RunControl {
  nb::object callback;  // callable(phase, iteration, total, loss, row or None), or None
  bool stop = false;
  nb::object error;  // the exception (KeyboardInterrupt from a signal, or the callback's own)
  // The newest good state the library showed us: Adam's checkpoints (parameters and history), and the parameters of
  // every history row (on_record: Adam and L-BFGS).
  bool have_state = false;
  TrainState state;
  long record_it = -1;
  std::vector<double> record_theta;

  // With the GIL: Ctrl-C (Python's SIGINT handler raises KeyboardInterrupt in PyErr_CheckSignals), then the
  // callback. Either error stops the run.
  // member >= -1 (an ensemble: -1 the batch, i member i alone) is passed as a sixth argument.
  void poll(const char* phase, long it, long total, double loss, const HistoryRow* row, int member = -2) {
    if (stop) return;
    nb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      fail(nb::python_error());
      return;
    }
    if (callback.is_none()) return;
    try {
      nb::object r = nb::none();
      if (row != nullptr) {
        nb::dict d;
        d["iteration"] = row->iteration;
        d["optimizer"] = row->optimizer;
        d["lr"] = row->lr;
        d["loss"] = row->loss;
        d["loss_pde"] = row->loss_pde;
        d["loss_boundary"] = row->loss_boundary;
        d["max_error"] = row->max_error;
        d["rel_l2_error"] = row->rel_l2_error;
        d["time_s"] = row->time_s;
        r = d;
      }
      if (member >= -1)
        callback(phase, it, total, loss, r, member);
      else
        callback(phase, it, total, loss, r);
    } catch (nb::python_error& e) {
      fail(std::move(e));
    }
  }
  void fail(nb::python_error&& e) {
    stop = true;
    error = nb::borrow(e.value());  // the exception object, with its traceback
  }
};

// Every training setting of train and train_ensemble, checked before any work by the CLI's own checks
// (host/run_setup.hpp).
struct TrainSettings {
  TrainConfig cfg;
  LmConfig lcfg;
  bool use_lm = false;
};
TrainSettings train_settings(const std::vector<std::pair<long, double>>& schedule, double beta1, double beta2,
                             double adam_eps, long lbfgs_iters, const std::string& lbfgs_method, int lbfgs_history,
                             double lbfgs_gtol, double lbfgs_ftol, long lbfgs_maxfun, const std::string& optimizer,
                             bool continuation, double lm_mu0, double lm_tol, const std::string& lm_form,
                             const std::string& lm_damping, long lm_cond_every, long history_every,
                             long progress_every) {
  TrainSettings st;
  TrainConfig& cfg = st.cfg;
  for (const auto& ph : schedule) {
    if (ph.first < 0 || ph.first > kMaxIterations || !(ph.second > 0.0))
      throw UsageError("schedule: every phase needs 0 <= iterations <= 10^12 and a positive learning rate");
    cfg.schedule.push_back({ph.first, ph.second});
  }
  if (total_iterations(cfg.schedule) > kMaxIterations) throw UsageError("schedule: more than 10^12 iterations");
  st.use_lm = optimizer == "lm";
  cfg.adam = {beta1, beta2, adam_eps};
  cfg.lbfgs.max_iter = lbfgs_iters;
  cfg.lbfgs.method = lbfgs_method;
  cfg.lbfgs.history = lbfgs_history;
  cfg.lbfgs.gtol = lbfgs_gtol;
  cfg.lbfgs.ftol = lbfgs_ftol;
  cfg.lbfgs.max_fun = lbfgs_maxfun;
  cfg.history_every = history_every;
  LmConfig& lcfg = st.lcfg;
  lcfg.mu0 = lm_mu0;
  lcfg.loss_tol = lm_tol;
  lcfg.form = lm_form;
  lcfg.damping = lm_damping;
  lcfg.cond_every = lm_cond_every == 0 ? history_every : lm_cond_every;  // as train_ensemble
  check_train_choices(cfg, optimizer, lcfg, continuation, Naming{false});
  if (progress_every < 1 || progress_every > kMaxIterations) throw UsageError("progress_every must lie in [1, 10^12]");
  cfg.log_every = progress_every;
  return st;
}

// A training result as the dict TrainResult wraps.
nb::dict result_dict(const TrainResult& res, const LmTrainResult& lm, const std::vector<LmStage>& stages, bool use_lm,
                     const std::string& status, nb::object error, double eps) {
  nb::dict out;
  out["status"] = status;
  out["error"] = std::move(error);
  out["history"] = history_dict(res.history);
  out["iterations"] = res.iterations;
  out["adam_iterations"] = res.adam_iterations;
  out["final_loss"] = res.final_loss;
  out["max_error"] = res.max_error;
  out["rel_l2_error"] = res.rel_l2_error;
  out["wall_time_s"] = res.wall_time_s;
  out["diverged"] = res.diverged.empty() ? nb::object(nb::none()) : nb::cast(res.diverged);
  out["diverged_at"] = res.diverged_at;
  nb::dict lb;
  lb["iterations"] = res.lbfgs.iterations;
  lb["evaluations"] = res.lbfgs.evaluations;
  lb["loss"] = res.lbfgs.loss;
  lb["stop"] = res.lbfgs.stop;
  out["lbfgs"] = lb;
  out["lm"] = use_lm ? nb::object(lm_dict(lm, stages)) : nb::none();
  out["eps"] = eps;                 // the last LM stage's eps
  out["ntk_history"] = nb::none();  // train(ntk_every=K) sets it
  return out;
}

nb::dict train(Problem& prob, Mlp& net, const std::vector<std::pair<long, double>>& schedule, double beta1,
               double beta2, double adam_eps, long lbfgs_iters, const std::string& lbfgs_method, int lbfgs_history,
               double lbfgs_gtol, double lbfgs_ftol, long lbfgs_maxfun, const std::string& optimizer,
               const std::vector<long>& lm_iters, const std::vector<double>& eps_continuation, double lm_mu0,
               double lm_tol, const std::string& lm_form, const std::string& lm_damping, long lm_cond_every,
               long history_every, long progress_every, long ntk_every, const std::string& ntk_scaling,
               const std::string& device, const std::string& precision, int threads, nb::object callback) {
  const auto t0 = std::chrono::steady_clock::now();
  TrainSettings st = train_settings(schedule, beta1, beta2, adam_eps, lbfgs_iters, lbfgs_method, lbfgs_history,
                                    lbfgs_gtol, lbfgs_ftol, lbfgs_maxfun, optimizer, !eps_continuation.empty(), lm_mu0,
                                    lm_tol, lm_form, lm_damping, lm_cond_every, history_every, progress_every);
  TrainConfig& cfg = st.cfg;
  LmConfig& lcfg = st.lcfg;
  const bool use_lm = st.use_lm;
  check_net(prob, net);
  check_ntk_every(ntk_every, history_every, use_lm, ntk_scaling, Naming{false});
  NtkPlan ntk_plan;
  NtkScaling ntk_d = NtkScaling::Lemma;
  if (ntk_every > 0) {
    ntk_d = parse_ntk_scaling(ntk_scaling);
    ntk_plan = plan_ntk_every(prob.pts, net.n_params(), ntk_d, 0, Naming{false});
  }

  // The LM stages as the CLI's (host/run_setup.hpp): one at the problem's eps, or one per eps of the continuation.
  ProblemSpec spec = prob.spec;
  PointSet pts = prob.pts;
  std::vector<LmStage> stages;
  if (use_lm) {
    stages = lm_stages(spec, eps_continuation, lm_iters, Naming{false});
    start_at_first_stage(stages, spec, pts);
  }

  RunControl ctl;
  ctl.callback = callback;
  const long adam_total = total_iterations(cfg.schedule);
  // Adam: a checkpoint at every progress step keeps the newest state (parameters and history) to return when the run
  // is stopped; on_record keeps the parameters of every history row (L-BFGS's too).
  cfg.checkpoint_every = progress_every;
  cfg.on_checkpoint = [&](const TrainState& state) {
    ctl.state = state;
    ctl.have_state = true;
    if (ctl.stop) throw Interrupted{};
  };
  Mlp work = net;                        // net's theta buffer stays put: numpy views of it remain valid
  std::unique_ptr<NtkRecorder> ntk_rec;  // made with the backend, below
  cfg.on_record = [&](long it, TrainSession& s) {
    ctl.record_theta.resize(work.theta.size());
    s.parameters(ctl.record_theta);
    ctl.record_it = it;
    if (ntk_rec != nullptr) ntk_rec->record(it, s);
  };
  TrainResult res;
  LmTrainResult lm;
  bool interrupted = false;
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::recursive_mutex> lock(g_backend_mutex);
    Backend& be = backend(device, precision, threads);
    if (ntk_every > 0) ntk_rec = std::make_unique<NtkRecorder>(be, work, pts, ntk_d, ntk_plan.chunk_rows, ntk_every);
    try {
      res = train_adam(be, work, spec, pts, cfg, [&](long it, long total, double loss) {
        ctl.poll(it <= adam_total ? "adam" : "lbfgs", it, total, loss, nullptr);
        // In Adam the stop waits for the checkpoint after this progress step (it has the state); at Adam's end and
        // in L-BFGS it is now.
        if (ctl.stop && it >= adam_total) throw Interrupted{};
      });
      if (use_lm && res.diverged.empty() && !ctl.stop) {
        lcfg.stop_when = [&] { return ctl.stop; };
        lcfg.stop_reason = "interrupted";
        std::ostringstream lmcsv;  // continue_with_lm's CSV text; the rows come back in lm.stages
        lm = continue_with_lm(be, work, spec, pts, lcfg, stages, history_every, res, nullptr,
                              [&](long it, long total, double loss) {
                                ctl.poll("lm", it, total, loss, res.history.empty() ? nullptr : &res.history.back());
                              });
      }
      interrupted = ctl.stop;
    } catch (const Interrupted&) {
      // Leave the network in the newest good state the run showed: an Adam checkpoint or a history row's network.
      interrupted = true;
      res = TrainResult{};
      if (ctl.have_state) {
        res.history = ctl.state.history;
        res.iterations = res.adam_iterations = ctl.state.iteration;
        work.theta = ctl.state.theta;
      }
      if (ctl.record_it > res.iterations || (!ctl.have_state && ctl.record_it >= 0)) {
        work.theta = ctl.record_theta;
        res.iterations = ctl.record_it;
        while (!res.history.empty() && res.history.back().iteration > ctl.record_it) res.history.pop_back();
      }
      // A history row of the network kept, when the last one is older (as train_adam ends with one).
      if (res.history.empty() || res.history.back().iteration < res.iterations) {
        double lr = 0.0;  // the schedule's learning rate of the step from this iteration (0 in L-BFGS)
        long left = res.iterations;
        for (const Phase& ph : cfg.schedule) {
          if (left < ph.iterations) {
            lr = ph.lr;
            break;
          }
          left -= ph.iterations;
        }
        res.history.push_back(history_row([&](span<const double> x, span<double> u, span<double> du,
                                              span<double> d2u) { be.evaluate(work, x, u, du, d2u); },
                                          spec, pts, res.iterations, res.iterations < adam_total ? "adam" : "lbfgs", lr,
                                          [&] { return work; }));
        res.history.back().time_s = seconds_since(t0);
      }
      res.wall_time_s = seconds_since(t0);
      if (!res.history.empty()) {
        res.final_loss = res.history.back().loss;
        res.max_error = res.history.back().max_error;
        res.rel_l2_error = res.history.back().rel_l2_error;
      }
    }
  }
  std::copy(work.theta.begin(), work.theta.end(), net.theta.begin());
  nb::dict out = result_dict(res, lm, stages, use_lm,
                             interrupted ? "interrupted" : (res.diverged.empty() ? "complete" : "diverged"),
                             interrupted ? ctl.error : nb::object(nb::none()), spec.eps);
  if (ntk_rec != nullptr) {  // the rows of the networks the history kept (an interrupted run's are up to its state)
    std::vector<NtkHistoryRow> rows;
    for (const NtkHistoryRow& r : ntk_rec->rows())
      if (r.iteration <= res.iterations) rows.push_back(r);
    out["ntk_history"] = ntk_history_dict(rows);
  }
  return out;
}

// `pinntk train --ensemble count`: networks of `layers` initialized from seed, seed + 1, ... trained on the problem,
// their Adam phases and L-BFGS as one batch (train_ensemble, host/ensemble.hpp), then LM member by member. Each
// member is the run train gives that seed. Returns {"members": [{"index", "seed", "net", "result"}...], "status",
// "error"}; a Ctrl-C or a callback's exception stops the ensemble with the members done so far.
nb::dict train_ensemble_py(Problem& prob, const std::vector<int>& layers, const std::string& init, int count,
                           uint64_t seed, const std::vector<std::pair<long, double>>& schedule, double beta1,
                           double beta2, double adam_eps, long lbfgs_iters, const std::string& lbfgs_method,
                           int lbfgs_history, double lbfgs_gtol, double lbfgs_ftol, long lbfgs_maxfun,
                           const std::string& optimizer, const std::vector<long>& lm_iters,
                           const std::vector<double>& eps_continuation, double lm_mu0, double lm_tol,
                           const std::string& lm_form, const std::string& lm_damping, long lm_cond_every,
                           long history_every, long progress_every, const std::string& device,
                           const std::string& precision, int threads, nb::object callback) {
  if (count < 1 || count > kMaxEnsemble)
    throw UsageError("count must lie in [1, " + std::to_string(kMaxEnsemble) + "], got " + std::to_string(count));
  if (seed > UINT64_MAX - static_cast<uint64_t>(count - 1))
    throw UsageError("the seeds seed .. seed + count - 1 pass 2^64 - 1");
  const TrainSettings st =
      train_settings(schedule, beta1, beta2, adam_eps, lbfgs_iters, lbfgs_method, lbfgs_history, lbfgs_gtol, lbfgs_ftol,
                     lbfgs_maxfun, optimizer, !eps_continuation.empty(), lm_mu0, lm_tol, lm_form, lm_damping,
                     lm_cond_every, history_every, progress_every);
  const Mlp first = new_mlp(layers, init, seed);  // the shape and the initializer checked before any work
  check_net(prob, first);
  ProblemSpec spec = prob.spec;
  PointSet pts = prob.pts;
  std::vector<LmStage> stages;
  if (st.use_lm) {
    stages = lm_stages(spec, eps_continuation, lm_iters, Naming{false});
    start_at_first_stage(stages, spec, pts);
  }
  MemberTraining how;
  how.adam = st.cfg;
  how.use_lm = st.use_lm;
  how.lm = st.lcfg;
  how.stages = stages;
  how.history_every = history_every;
  RunControl ctl;
  ctl.callback = callback;
  const long adam_total = total_iterations(st.cfg.schedule);
  std::vector<EnsembleMember> done;
  EnsembleHooks hooks;
  hooks.initial_net = [&](uint64_t s) { return init_mlp(first.layers, init, s); };
  hooks.on_start = [](int, uint64_t) {};
  hooks.progress = [&](int member, long it, long total, double loss) {
    ctl.poll(it <= adam_total ? "adam" : (st.use_lm ? "lm" : "lbfgs"), it, total, loss, nullptr, member);
    if (ctl.stop) throw Interrupted{};
  };
  hooks.on_done = [&](const EnsembleMember& m) { done.push_back(m); };
  bool interrupted = false;
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::recursive_mutex> lock(g_backend_mutex);
    Backend& be = backend(device, precision, threads);
    try {
      train_ensemble(be, spec, pts, how, count, seed, hooks);
    } catch (const Interrupted&) {
      interrupted = true;
    }
  }
  nb::list members;
  for (const EnsembleMember& m : done) {
    nb::dict d;
    d["index"] = m.index;
    d["seed"] = m.seed;
    d["net"] = nb::cast(m.net);
    d["result"] = result_dict(m.result, m.lm, stages, st.use_lm, m.result.diverged.empty() ? "complete" : "diverged",
                              nb::none(), spec.eps);
    members.append(d);
  }
  nb::dict out;
  out["members"] = members;
  out["status"] = interrupted ? "interrupted" : "complete";
  out["error"] = interrupted ? ctl.error : nb::object(nb::none());
  return out;
}

// ---- reproduce -----------------------------------------------------------------------------------------------------

// The CLI's reproduction into `out` (reproduce_into, host/run_setup.hpp) without its plotting and terminal lines: the
// figures' files and the merged summary.json and README.md; returns summary.json's text.
std::string run_reproduce(const std::string& what, const std::string& out_path, bool quick, const std::string& full,
                          int trials, int seeds, const std::string& device, const std::string& precision, int threads,
                          const std::string& init, const std::string& lbfgs_method) {
  ReproduceOptions opt;
  opt.what = what;
  opt.quick = quick;
  opt.full = full;
  opt.trials = trials;
  opt.seeds = seeds;
  opt.device = device;
  opt.precision = precision;
  opt.fig4_init = init;
  opt.lbfgs_method = lbfgs_method;
  if (trials < 0 || trials > 10000 || seeds < 0 || seeds > 10000)
    throw UsageError("trials and seeds must lie in [1, 10000] (0: the figure's default)");
  validate(opt);
  nb::gil_scoped_release release;
  std::lock_guard<std::recursive_mutex> lock(g_backend_mutex);
  OutputDir out(out_path, "reproduce");
  out.open();
  Backend& be = backend(device, precision, threads);
  return reproduce_into(opt, be, out);
}

}  // namespace
}  // namespace pinntk

NB_MODULE(_core, m) {
  using namespace pinntk;
  m.doc() = "pinntk's compiled core (use the package pinntk)";
  nb::exception<UsageError>(m, "UsageError", PyExc_ValueError);
  nb::exception<NumericalError>(m, "NumericalError", PyExc_ArithmeticError);

  m.attr("__version__") = PINNTK_VERSION;
#ifdef PINNTK_HAVE_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
  m.def("cuda_device_count", &cuda_device_count);
  // The host memory a run may take when no memory_limit is given (what the size checks compare against).
  m.def("available_memory_bytes", [] { return available_memory_bytes(); });
  m.def("problem_names", [] {
    std::vector<std::string> v = problem_names(), w = problem_names_nd();
    v.insert(v.end(), w.begin(), w.end());
    return v;
  });
  m.def("init_names", &init_names);
  m.def("parse_real", [](const std::string& t, const std::string& what) { return parse_real(t, what); });
  m.def("parse_schedule", [](const std::string& t) {
    std::vector<std::pair<long, double>> v;
    for (const Phase& ph : parse_schedule(t)) v.push_back({ph.iterations, ph.lr});
    return v;
  });
  m.def("parse_layers", &parse_layers);

  nb::class_<Problem>(
      m, "Problem",
      "A problem and its training rows (README.md, Problems): a preset or a problem file with the "
      "overrides of the CLI's --eps, --nc, --nb, --lambda, --omega, --grid, --domain, --boundary, --points, "
      "--point-seed. The rows are built once: nc collocation rows, then nb boundary rows.")
      .def_static(
          "preset",
          [](const std::string& name, std::optional<double> eps, std::optional<int64_t> nc, std::optional<int64_t> nb,
             std::optional<double> lambda, std::optional<double> omega, std::optional<std::string> grid,
             std::optional<std::string> domain, std::optional<std::string> boundary,
             std::optional<std::filesystem::path> points, std::optional<nb::int_> point_seed) {
            return make_problem(problem_preset(name),
                                overrides(eps, nc, nb, lambda, omega, grid, domain, boundary, points, point_seed));
          },
          nb::arg("name"), nb::arg("eps") = nb::none(), nb::arg("nc") = nb::none(), nb::arg("nb") = nb::none(),
          nb::arg("lam") = nb::none(), nb::arg("omega") = nb::none(), nb::arg("grid") = nb::none(),
          nb::arg("domain") = nb::none(), nb::arg("boundary") = nb::none(), nb::arg("points") = nb::none(),
          nb::arg("point_seed") = nb::none(),
          "The preset `name` (pinntk.problem_names()) with its paper settings, overridden by: eps (> 0, for "
          "problems with a scale), nc (collocation points), nb (boundary rows), lam (boundary weight lambda of eq. "
          "8), omega (frequency of the Darcy coefficient), grid ('linspace' | 'interior'; n-D 'grid' | 'sobol' | "
          "'uniform'), domain ('A,B' or n-D 'A1,B1,A2,B2', as --domain; accepts pi); n-D only: boundary ('grid' | "
          "'uniform': the boundary points on each face), points (a float64 .npy file of the collocation points, "
          "shape (nc, n), inside the box; replaces nc and grid), point_seed (the seed of Sobol or uniform points, "
          "in [0, 2^64 - 1]; default 0). UsageError (a ValueError) for an unknown name or a value out of range.")
      .def_static(
          "from_file",
          [](const std::filesystem::path& path, std::optional<double> eps, std::optional<int64_t> nc,
             std::optional<int64_t> nb, std::optional<double> lambda, std::optional<std::string> grid,
             std::optional<std::string> boundary, std::optional<std::filesystem::path> points,
             std::optional<nb::int_> point_seed) {
            return make_problem(
                load_problem_file(path.string()),
                overrides(eps, nc, nb, lambda, std::nullopt, grid, std::nullopt, boundary, points, point_seed));
          },
          nb::arg("path"), nb::arg("eps") = nb::none(), nb::arg("nc") = nb::none(), nb::arg("nb") = nb::none(),
          nb::arg("lam") = nb::none(), nb::arg("grid") = nb::none(), nb::arg("boundary") = nb::none(),
          nb::arg("points") = nb::none(), nb::arg("point_seed") = nb::none(),
          "A problem read from a JSON problem file (problems/README.md; formulas parsed by GiNaC), with the same "
          "overrides as preset (eps only when the file defines the constant eps; boundary, points and point_seed "
          "only for an n-D file). UsageError naming the file and the field for anything wrong.")
      .def(
          "check",
          [](const Problem& p) {
            if (p.spec.kind != ProblemKind::File)
              throw UsageError("check(): problem " + p.spec.name + " is a preset, not a problem file");
            return problem_check_report(p.spec, p.pts);
          },
          "`pinntk problem check`'s report of a problem file as text: the form, formulas and constants, the "
          "coefficient's range and contrast, the smallest scale and collocation points per period, and with an exact "
          "solution and a forcing max |L u* - f| and max |u* - g| (marked CHECK when not at rounding level).")
      .def_prop_ro(
          "name", [](const Problem& p) { return p.spec.name; }, "the preset's name (a file's: its path)")
      .def_prop_ro(
          "dim", [](const Problem& p) { return p.spec.dim; }, "n, the number of coordinates (1 to 3)")
      .def_prop_ro(
          "eps", [](const Problem& p) { return uses_eps(p.spec) ? nb::cast(p.spec.eps) : nb::object(nb::none()); },
          "the scale parameter eps, or None for a problem without one")
      .def_prop_ro("omega", [](const Problem& p) { return p.spec.omega; })
      .def_prop_ro("nc", [](const Problem& p) { return p.pts.nc; })
      .def_prop_ro("nb", [](const Problem& p) { return p.pts.nb; })
      .def_prop_ro("lam", [](const Problem& p) { return p.spec.lambda; })
      .def_prop_ro("grid", [](const Problem& p) { return std::string(grid_name(p.spec.grid)); })
      .def_prop_ro("default_layers", [](const Problem& p) { return p.spec.default_layers; })
      .def_prop_ro("default_init", [](const Problem& p) { return p.spec.default_init; })
      .def_prop_ro("domain",
                   [](const Problem& p) {
                     if (p.spec.dim == 1)
                       return std::make_pair(std::vector<double>{p.spec.xa}, std::vector<double>{p.spec.xb});
                     return std::make_pair(p.spec.lo, p.spec.hi);
                   })
      .def_prop_ro(
          "points",
          [](const Problem& p) {
            return read_only(to_numpy(std::vector<double>(p.pts.x),
                                      {static_cast<size_t>(p.pts.size()), static_cast<size_t>(p.pts.dim)}));
          },
          "the rows' points, shape (nc + nb, n): collocation points, then boundary points (the order of J's rows); "
          "read-only (a problem's rows are fixed when it is made)")
      .def_prop_ro(
          "weights", [](const Problem& p) { return read_only(to_numpy(p.pts.w)); },
          "the loss weights w, shape (nc + nb,): 1/nc on collocation rows, lambda/nb on boundary rows (eq. 8)")
      .def_prop_ro(
          "rows",
          [](const Problem& p) {  // r_k = gamma u + sum_i (beta_ki D_i u + alpha_ki D_i^2 u) - f_k
            const std::vector<size_t> nd{static_cast<size_t>(p.pts.size()), static_cast<size_t>(p.pts.dim)};
            nb::dict d;
            d["alpha"] = read_only(to_numpy(std::vector<double>(p.pts.alpha), nd));
            d["beta"] = read_only(to_numpy(std::vector<double>(p.pts.beta), nd));
            d["gamma"] = read_only(to_numpy(p.pts.gamma));
            d["f"] = read_only(to_numpy(p.pts.f));
            d["w"] = read_only(to_numpy(p.pts.w));
            if (p.pts.has_directions())
              d["dirs"] = read_only(to_numpy(std::vector<double>(p.pts.dirs), {nd[0], nd[1], nd[1]}));
            return d;
          },
          "the rows' coefficients r_k = gamma_k u + sum_i (beta_ki D_i u + alpha_ki D_i^2 u) - f_k: a dict "
          "of alpha, beta (shape (N, n)), gamma, f, w (shape (N,)); with a full coefficient tensor also dirs "
          "(shape (N, n, n)): D_i is the derivative along dirs[k, i] (the tensor's eigenvectors), else along axis i; "
          "read-only arrays")
      .def(
          "solution",
          [](const Problem& p, nb::ndarray<const double, nb::c_contig, nb::device::cpu> x) {
            const size_t dim = static_cast<size_t>(p.spec.dim);
            if (!(x.ndim() == 2 && x.shape(1) == dim) && !(x.ndim() == 1 && dim == 1))
              throw UsageError("x: expected shape (N, " + std::to_string(dim) + ")" + (dim == 1 ? " or (N,)" : ""));
            std::vector<double> xs(x.data(), x.data() + x.shape(0) * dim);
            std::vector<double> u;
            {
              nb::gil_scoped_release release;
              u = solution_values(p.spec, xs);
            }
            return to_numpy(std::move(u), {static_cast<size_t>(x.shape(0))});
          },
          nb::arg("x"),
          "the solution the error is measured against (the exact one, or a problem file's reference solution) at "
          "the points x, shape (N,) or (N, n); returns shape (N,)")
      .def_prop_ro(
          "test_points",
          [](const Problem& p) {
            std::vector<double> x = test_points(p.spec);
            const size_t dim = static_cast<size_t>(p.spec.dim);
            return to_numpy(std::move(x), {x.size() / dim, dim});
          },
          "the points of the error, shape (M, n): 1000 equispaced points in 1-D, the preset's test set in n-D");

  nb::class_<Mlp>(m, "Mlp")
      .def(nb::init<>())
      .def(
          "__init__",
          [](Mlp* self, const std::vector<int>& layers, const std::string& init, uint64_t seed) {
            new (self) Mlp(new_mlp(layers, init, seed));
          },
          nb::arg("layers"), nb::arg("init") = "glorot-normal", nb::arg("seed") = 0)
      .def_prop_ro("layers", [](const Mlp& n) { return n.layers; })
      .def_prop_ro("n_params", &Mlp::n_params)
      .def_prop_rw(
          "theta",
          [](nb::handle self) {
            Mlp& n = nb::cast<Mlp&>(self);
            return Array1(n.theta.data(), {n.theta.size()}, self);
          },
          &set_theta, nb::rv_policy::reference_internal)
      .def("weight_offset",
           [](const Mlp& n, int l) {
             if (l < 1 || l >= static_cast<int>(n.layers.size()))
               throw UsageError("weight_offset: layer index must lie in [1, " + std::to_string(n.layers.size() - 1) +
                                "]");
             return weight_offset(n.layers, l);
           })
      .def("to_json",
           [](const Mlp& n) {
             require_network(n);
             return checkpoint_json(n);
           })
      .def_static("from_json", [](const std::string& text) { return checkpoint_from_json(text, "<json>"); })
      .def_static("load", &load_checkpoint)
      .def("save",
           [](const Mlp& n, const std::string& path) {
             require_network(n);
             replace_file(path, checkpoint_json(n));
           })
      .def("copy", [](const Mlp& n) { return Mlp(n); })
      .def("_assign",
           [](Mlp& self, const Mlp& other) {  // only on a fresh object: reallocates theta
             self.layers = other.layers;
             self.theta = other.theta;
           })
      .def("evaluate", &evaluate, nb::arg("x"), nb::arg("device") = "cpu", nb::arg("threads") = 0);

  m.def("ntk", &ntk, nb::arg("problem"), nb::arg("net"), nb::arg("device"), nb::arg("precision"), nb::arg("threads"),
        nb::arg("scaling"), nb::arg("path"), nb::arg("chunk_rows"), nb::arg("memory_limit"), nb::arg("save_matrices"));
  m.def("device_matrix", &device_matrix, nb::arg("problem"), nb::arg("net"), nb::arg("what"), nb::arg("device"),
        nb::arg("precision"), nb::arg("threads"), nb::arg("scaling"), nb::arg("memory_limit"));
  m.def("ntk_top", &ntk_top, nb::arg("problem"), nb::arg("net"), nb::arg("k"), nb::arg("vectors"), nb::arg("device"),
        nb::arg("precision"), nb::arg("threads"), nb::arg("scaling"), nb::arg("tol"), nb::arg("memory_limit"));
  m.def("ntk_density", &ntk_density, nb::arg("problem"), nb::arg("net"), nb::arg("probes"), nb::arg("steps"),
        nb::arg("bins"), nb::arg("seed"), nb::arg("device"), nb::arg("precision"), nb::arg("threads"),
        nb::arg("scaling"), nb::arg("memory_limit"));
  m.def("train_ensemble", &train_ensemble_py, nb::arg("problem"), nb::arg("layers"), nb::arg("init"), nb::arg("count"),
        nb::arg("seed"), nb::arg("schedule"), nb::arg("beta1"), nb::arg("beta2"), nb::arg("adam_eps"),
        nb::arg("lbfgs_iters"), nb::arg("lbfgs_method"), nb::arg("lbfgs_history"), nb::arg("lbfgs_gtol"),
        nb::arg("lbfgs_ftol"), nb::arg("lbfgs_maxfun"), nb::arg("optimizer"), nb::arg("lm_iters"),
        nb::arg("eps_continuation"), nb::arg("lm_mu0"), nb::arg("lm_tol"), nb::arg("lm_form"), nb::arg("lm_damping"),
        nb::arg("lm_cond_every"), nb::arg("history_every"), nb::arg("progress_every"), nb::arg("device"),
        nb::arg("precision"), nb::arg("threads"), nb::arg("callback").none());
  m.def("train", &train, nb::arg("problem"), nb::arg("net"), nb::arg("schedule"), nb::arg("beta1"), nb::arg("beta2"),
        nb::arg("adam_eps"), nb::arg("lbfgs_iters"), nb::arg("lbfgs_method"), nb::arg("lbfgs_history"),
        nb::arg("lbfgs_gtol"), nb::arg("lbfgs_ftol"), nb::arg("lbfgs_maxfun"), nb::arg("optimizer"),
        nb::arg("lm_iters"), nb::arg("eps_continuation"), nb::arg("lm_mu0"), nb::arg("lm_tol"), nb::arg("lm_form"),
        nb::arg("lm_damping"), nb::arg("lm_cond_every"), nb::arg("history_every"), nb::arg("progress_every"),
        nb::arg("ntk_every"), nb::arg("ntk_scaling"), nb::arg("device"), nb::arg("precision"), nb::arg("threads"),
        nb::arg("callback").none());
  m.def("reproduce", &run_reproduce, nb::arg("target"), nb::arg("out"), nb::arg("quick"), nb::arg("full"),
        nb::arg("trials"), nb::arg("seeds"), nb::arg("device"), nb::arg("precision"), nb::arg("threads"),
        nb::arg("init"), nb::arg("lbfgs_method"));
}
