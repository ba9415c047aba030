// slurp: a file's whole content, for the tests that check what pinntk wrote ("" when it cannot be read).
#pragma once

#include <filesystem>  // std::filesystem::path
#include <fstream>     // std::ifstream
#include <sstream>     // std::stringstream
#include <string>      // std::string

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
