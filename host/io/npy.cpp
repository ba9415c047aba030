#include "host/io/npy.hpp"

#include <cstring>    // std::memcpy
#include <stdexcept>  // std::logic_error

namespace pinntk {

std::string npy_bytes(const std::vector<double>& data, const std::vector<size_t>& shape) {
  size_t count = 1;
  std::string dims;
  for (size_t d : shape) {
    count *= d;
    dims += (dims.empty() ? "" : ", ") + std::to_string(d);
  }
  if (count != data.size()) throw std::logic_error("npy_bytes: shape does not match the data size");
  if (shape.size() == 1) dims += ",";  // (n,) for 1-D, (n, m) otherwise, as numpy writes them
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  const size_t off = out.size();
  out.resize(off + data.size() * sizeof(double));
  std::memcpy(&out[off], data.data(), data.size() * sizeof(double));  // x86-64 and arm64 are little-endian
  return out;
}

}  // namespace pinntk
