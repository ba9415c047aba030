// The errors the CLI turns into exit statuses (README "Errors"): UsageError, bad input from the user (flags, files,
// sizes beyond the memory), status 2; NumericalError, a quantity that must be finite is not (overflow, a
// diverged optimizer), status 3. Any other exception is an internal failure, status 1.
#pragma once

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace pinntk {

struct UsageError : std::runtime_error {
  explicit UsageError(const std::string& what) : std::runtime_error(what) {}
};

struct NumericalError : std::runtime_error {
  explicit NumericalError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace pinntk
