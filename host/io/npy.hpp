// npy_bytes: a float64 array in NumPy's .npy format (version 1.0), loadable by numpy.load.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

namespace pinntk {

std::string npy_bytes(const std::vector<double>& data, const std::vector<size_t>& shape);

}  // namespace pinntk
