// UsageError: bad input from the user (flags, files); the CLI prints its message on one line and exits non-zero.
#pragma once

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace pinntk {

struct UsageError : std::runtime_error {
  explicit UsageError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace pinntk
