#include "host/ntk_history.hpp"

#include <algorithm>  // std::max, std::all_of
#include <chrono>     // std::chrono::steady_clock
#include <cmath>      // std::abs, std::isfinite
#include <iterator>   // std::begin, std::end
#include <numeric>    // std::accumulate
#include <sstream>    // std::ostringstream

#include "common/errors.hpp"        // UsageError, NumericalError
#include "host/optim/schedule.hpp"  // kMaxIterations

namespace pinntk {
namespace {

double max_abs(const double* x, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs(x[i]));
  return m;
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

}  // namespace

const NtkHistoryColumn kNtkHistoryColumn[kNtkHistoryColumns] = {
    {"frobenius_K", &NtkHistoryRow::frobenius_K, true},       {"frobenius_Kuu", &NtkHistoryRow::frobenius_Kuu, true},
    {"frobenius_Kbb", &NtkHistoryRow::frobenius_Kbb, true},   {"lambda_max_K", &NtkHistoryRow::lambda_max_K, true},
    {"lambda_max_Kuu", &NtkHistoryRow::lambda_max_Kuu, true}, {"lambda_min_Kuu", &NtkHistoryRow::lambda_min_Kuu, true},
    {"lambda_max_Kbb", &NtkHistoryRow::lambda_max_Kbb, true}, {"trace_Kuu", &NtkHistoryRow::trace_Kuu, true},
    {"trace_Kbb", &NtkHistoryRow::trace_Kbb, true},           {"theta_max_abs", &NtkHistoryRow::theta_max_abs, false},
    {"w0_max_abs", &NtkHistoryRow::w0_max_abs, false},        {"ntk_time_s", &NtkHistoryRow::seconds, false},
};

void check_ntk_every(long every, long history_every, bool use_lm, const std::string& scaling, const Naming& name) {
  if (every < 0 || every > kMaxIterations) throw UsageError(name("ntk_every") + " must lie in [0, 10^12]");
  if (every == 0) return;
  try {
    parse_ntk_scaling(scaling);
  } catch (const UsageError&) {
    throw UsageError(name("ntk_scaling") + ": unknown value '" + scaling + "' (known: lemma, none)");
  }
  if (use_lm)
    throw UsageError(name("ntk_every") +
                     " is for Adam and L-BFGS runs; LM records the NTK's condition number itself (" +
                     name("lm_cond_every") + ")");
  if (history_every > 0 && every % history_every != 0)
    throw UsageError(name("ntk_every") + " must be a multiple of " + name("history_every") + " (" +
                     std::to_string(history_every) + "): the NTK is taken at history rows");
}

NtkPlan plan_ntk_every(const PointSet& pts, long n_params, NtkScaling scaling, uint64_t budget, const Naming& name) {
  try {
    return plan_ntk(NtkPath::Auto, pts.nc, pts.nb, n_params, pts.dim,
                    ntk_weights_blockwise(ntk_row_weights(pts, scaling), pts.nc), 0, false, budget,
                    pts.has_directions());
  } catch (const UsageError& e) {
    throw UsageError(name("ntk_every") + ": " + e.what());
  }
}

NtkHistoryRow ntk_history_row(Backend& be, const Mlp& net, const PointSet& pts, NtkScaling scaling, long chunk_rows,
                              long iteration) {
  const auto t0 = std::chrono::steady_clock::now();
  NtkHistoryRow row;
  row.iteration = iteration;
  row.theta_max_abs = max_abs(net.theta.data(), net.theta.size());
  row.w0_max_abs = max_abs(net.theta.data(), static_cast<size_t>(net.layers[0]) * net.layers[1]);  // W^1
  try {
    const NtkResult r = analyze_ntk(be, net, pts, scaling, false, chunk_rows);
    row.frobenius_K = r.frobenius_K;
    row.frobenius_Kuu = r.frobenius_Kuu;
    row.frobenius_Kbb = r.frobenius_Kbb;
    row.lambda_max_K = r.spectrum_K.empty() ? 0.0 : r.spectrum_K.front();
    row.lambda_max_Kuu = r.spectrum_Kuu.empty() ? 0.0 : r.spectrum_Kuu.front();
    row.lambda_min_Kuu = r.spectrum_Kuu.empty() ? 0.0 : r.spectrum_Kuu.back();
    row.lambda_max_Kbb = r.spectrum_Kbb.empty() ? 0.0 : r.spectrum_Kbb.front();
    row.trace_Kuu = sum(r.spectrum_Kuu);
    row.trace_Kbb = sum(r.spectrum_Kbb);
    row.computed = std::all_of(std::begin(kNtkHistoryColumn), std::end(kNtkHistoryColumn),
                               [&](const NtkHistoryColumn& c) { return !c.kernel || std::isfinite(row.*c.field); });
  } catch (const NumericalError&) {
    row.computed = false;
  }
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return row;
}

bool NtkRecorder::record(long it, TrainSession& session) {
  if (it % every_ != 0 || (!rows_.empty() && rows_.back().iteration >= it)) return false;
  session.parameters(net_.theta);
  rows_.push_back(ntk_history_row(be_, net_, pts_, scaling_, chunk_rows_, it));
  return true;
}

nlohmann::json NtkRecorder::state_below(long iteration) const {
  std::vector<NtkHistoryRow> below;
  for (const NtkHistoryRow& r : rows_)
    if (r.iteration < iteration) below.push_back(r);
  return ntk_history_json(below);
}

void NtkRecorder::restore(const nlohmann::json& j, long iteration, const std::string& what) {
  rows_ = ntk_history_from_json(j, every_, iteration, what);
}

std::string ntk_history_csv(const std::vector<NtkHistoryRow>& rows) {
  std::ostringstream os;
  os.precision(17);
  os << "iteration";
  for (const NtkHistoryColumn& c : kNtkHistoryColumn) os << ',' << c.name;
  os << '\n';
  for (const NtkHistoryRow& r : rows) {
    os << r.iteration;
    for (const NtkHistoryColumn& c : kNtkHistoryColumn) {
      os << ',';
      if (!c.kernel || r.computed) os << r.*c.field;
    }
    os << '\n';
  }
  return os.str();
}

nlohmann::json ntk_history_json(const std::vector<NtkHistoryRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const NtkHistoryRow& r : rows) {
    nlohmann::json row = nlohmann::json::array({r.iteration});
    for (const NtkHistoryColumn& c : kNtkHistoryColumn)
      row.push_back(!c.kernel || r.computed ? nlohmann::json(r.*c.field) : nullptr);
    out.push_back(row);
  }
  return out;
}

std::vector<NtkHistoryRow> ntk_history_from_json(const nlohmann::json& j, long every, long before,
                                                 const std::string& what) {
  const long want = every > 0 ? (before + every - 1) / every : 0;
  const std::string shape = what + ": \"ntk_history\" must hold " + std::to_string(want) + " rows [iteration, " +
                            std::to_string(kNtkHistoryColumns) + " numbers] at iterations 0, " + std::to_string(every) +
                            ", ... below " + std::to_string(before) + " (the NTK rows of --ntk-every " +
                            std::to_string(every) + ")";
  if (!j.is_array() || static_cast<long>(j.size()) != want) throw UsageError(shape);
  std::vector<NtkHistoryRow> rows;
  for (long k = 0; k < want; ++k) {
    const nlohmann::json& r = j[static_cast<size_t>(k)];
    if (!r.is_array() || r.size() != 1 + kNtkHistoryColumns || !r[0].is_number_integer() ||
        r[0].get<long>() != k * every)
      throw UsageError(shape);
    NtkHistoryRow row;
    row.iteration = k * every;
    int nulls = 0, kernel = 0;  // a row's kernel cells are all numbers or all null
    for (int i = 0; i < kNtkHistoryColumns; ++i) {
      const NtkHistoryColumn& c = kNtkHistoryColumn[i];
      const nlohmann::json& x = r[static_cast<size_t>(1 + i)];
      kernel += c.kernel;
      if (x.is_null() && c.kernel) {
        ++nulls;
      } else if (x.is_number() && std::isfinite(x.get<double>())) {
        row.*c.field = x.get<double>();
      } else {
        throw UsageError(shape);
      }
    }
    if (nulls != 0 && nulls != kernel) throw UsageError(shape);
    row.computed = nulls == 0;
    rows.push_back(row);
  }
  return rows;
}

}  // namespace pinntk
