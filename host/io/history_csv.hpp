// history_csv: a training's history rows (host/train.hpp) as CSV text, with the columns each output file keeps.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "host/train.hpp"  // HistoryRow

namespace pinntk {

// The fields of a HistoryRow; the CSV header names them "iteration", "optimizer", "lr", "loss", "loss_pde",
// "loss_boundary", "max_error" and "time_s".
enum class HistoryColumn { Iteration, Optimizer, Lr, Loss, LossPde, LossBoundary, MaxError, RelL2Error, Time };

// Every column in that order: pinntk train's history.csv.
const std::vector<HistoryColumn>& all_history_columns();

// The header line, then one line per row: integers as they are, numbers to 17 significant digits.
std::string history_csv(const std::vector<HistoryRow>& rows, const std::vector<HistoryColumn>& columns);

}  // namespace pinntk
