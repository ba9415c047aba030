#include "host/io/history_csv.hpp"

#include <sstream>  // std::ostringstream

namespace pinntk {
namespace {

const char* column_name(HistoryColumn c) {
  switch (c) {
    case HistoryColumn::Iteration:
      return "iteration";
    case HistoryColumn::Optimizer:
      return "optimizer";
    case HistoryColumn::Lr:
      return "lr";
    case HistoryColumn::Loss:
      return "loss";
    case HistoryColumn::LossPde:
      return "loss_pde";
    case HistoryColumn::LossBoundary:
      return "loss_boundary";
    case HistoryColumn::MaxError:
      return "max_error";
    case HistoryColumn::RelL2Error:
      return "rel_l2_error";
    case HistoryColumn::Time:
      return "time_s";
  }
  return "";
}

void write_field(std::ostream& out, const HistoryRow& h, HistoryColumn c) {
  switch (c) {
    case HistoryColumn::Iteration:
      out << h.iteration;
      break;
    case HistoryColumn::Optimizer:
      out << h.optimizer;
      break;
    case HistoryColumn::Lr:
      out << h.lr;
      break;
    case HistoryColumn::Loss:
      out << h.loss;
      break;
    case HistoryColumn::LossPde:
      out << h.loss_pde;
      break;
    case HistoryColumn::LossBoundary:
      out << h.loss_boundary;
      break;
    case HistoryColumn::MaxError:
      out << h.max_error;
      break;
    case HistoryColumn::RelL2Error:
      out << h.rel_l2_error;
      break;
    case HistoryColumn::Time:
      out << h.time_s;
      break;
  }
}

}  // namespace

const std::vector<HistoryColumn>& all_history_columns() {
  static const std::vector<HistoryColumn> all = {
      HistoryColumn::Iteration, HistoryColumn::Optimizer,  HistoryColumn::Lr,
      HistoryColumn::Loss,      HistoryColumn::LossPde,    HistoryColumn::LossBoundary,
      HistoryColumn::MaxError,  HistoryColumn::RelL2Error, HistoryColumn::Time};
  return all;
}

std::string history_csv(const std::vector<HistoryRow>& rows, const std::vector<HistoryColumn>& columns) {
  std::ostringstream out;
  out.precision(17);
  for (size_t c = 0; c < columns.size(); ++c) out << (c > 0 ? "," : "") << column_name(columns[c]);
  out << '\n';
  for (const auto& h : rows) {
    for (size_t c = 0; c < columns.size(); ++c) {
      if (c > 0) out << ',';
      write_field(out, h, columns[c]);
    }
    out << '\n';
  }
  return out.str();
}

}  // namespace pinntk
