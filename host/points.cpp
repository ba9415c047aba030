#include "host/points.hpp"

#include <algorithm>               // std::remove_if
#include <boost/random/sobol.hpp>  // boost::random::sobol
#include <cmath>                   // std::isfinite, std::lround, std::pow
#include <cstdio>                  // std::sscanf
#include <cstring>                 // std::memcpy

#include "common/errors.hpp"  // UsageError
#include "host/io/files.hpp"  // read_regular_file
#include "host/rng.hpp"       // Rng

namespace pinntk {

void validate(const Box& box) {
  if (box.dim() < 1 || box.dim() > 3 || box.hi.size() != box.lo.size())
    throw UsageError("domain: a box of 1, 2 or 3 intervals is needed");
  for (int i = 0; i < box.dim(); ++i)
    if (!(box.lo[i] < box.hi[i]) || !std::isfinite(box.hi[i] - box.lo[i]))
      throw UsageError("domain: interval " + std::to_string(i + 1) + " must have finite ends a < b");
}

namespace {

void check_count(long count, const char* what) {
  if (count < 1 || count > (1L << 24)) throw UsageError(std::string(what) + " must lie in [1, 16777216]");
}

// The n-dimensional tensor grid of the interior points of each axis, axis 0 varying slowest.
std::vector<double> tensor_grid(const std::vector<std::vector<double>>& axes) {
  long total = 1;
  for (const auto& a : axes) total *= static_cast<long>(a.size());
  const int n = static_cast<int>(axes.size());
  std::vector<double> out(static_cast<size_t>(total) * n);
  for (long p = 0; p < total; ++p) {
    long rest = p;
    for (int i = n - 1; i >= 0; --i) {
      const long k = static_cast<long>(axes[i].size());
      out[static_cast<size_t>(p) * n + i] = axes[i][rest % k];
      rest /= k;
    }
  }
  return out;
}

std::vector<double> interior_axis(double a, double b, int k) {
  std::vector<double> x(k);
  for (int j = 0; j < k; ++j) x[j] = a + (j + 1) * (b - a) / (k + 1);
  return x;
}

// k >= 2 points from a to b, both ends included.
std::vector<double> closed_axis(double a, double b, int k) {
  std::vector<double> x(k);
  for (int j = 0; j < k; ++j) x[j] = a + j * (b - a) / (k - 1);
  x.back() = b;
  return x;
}

// The tensor grid of the points axis(lo_i, hi_i, per_axis[i]) on each axis, after checking the counts.
std::vector<double> box_grid(const Box& box, const std::vector<int>& per_axis, int min_per_axis,
                             std::vector<double> (*axis)(double, double, int)) {
  validate(box);
  if (static_cast<int>(per_axis.size()) != box.dim())
    throw UsageError("grid: one point count per axis is needed (" + std::to_string(box.dim()) + ")");
  long total = 1;
  std::vector<std::vector<double>> axes;
  for (int i = 0; i < box.dim(); ++i) {
    check_count(per_axis[i], "grid: points per axis");
    if (per_axis[i] < min_per_axis) throw UsageError("grid: a closed grid needs at least 2 points per axis");
    total *= per_axis[i];
    check_count(total, "grid: points in all");
    axes.push_back(axis(box.lo[i], box.hi[i], per_axis[i]));
  }
  return tensor_grid(axes);
}

}  // namespace

std::vector<double> grid_points(const Box& box, const std::vector<int>& per_axis) {
  return box_grid(box, per_axis, 1, interior_axis);
}

std::vector<double> closed_grid_points(const Box& box, const std::vector<int>& per_axis) {
  return box_grid(box, per_axis, 2, closed_axis);
}

std::vector<double> sobol_points(const Box& box, int count, uint64_t seed) {
  validate(box);
  check_count(count, "sobol: points");
  const int n = box.dim();
  boost::random::sobol gen(static_cast<std::size_t>(n));
  Rng rng(seed);
  std::vector<uint64_t> shift(n);
  for (auto& s : shift) s = rng.next();
  std::vector<double> out(static_cast<size_t>(count) * n);
  for (int p = 0; p < count; ++p)
    for (int i = 0; i < n; ++i) {
      const uint64_t bits = static_cast<uint64_t>(gen()) ^ shift[i];
      const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;  // [0, 1) on 53 bits
      out[static_cast<size_t>(p) * n + i] = box.lo[i] + u * (box.hi[i] - box.lo[i]);
    }
  return out;
}

std::vector<double> uniform_points(const Box& box, int count, uint64_t seed) {
  validate(box);
  check_count(count, "uniform: points");
  const int n = box.dim();
  Rng rng(seed);
  std::vector<double> out(static_cast<size_t>(count) * n);
  for (size_t q = 0; q < out.size(); ++q) {
    const int i = static_cast<int>(q % n);
    out[q] = box.lo[i] + rng.uniform() * (box.hi[i] - box.lo[i]);
  }
  return out;
}

std::vector<double> face_points(const Box& box, int per_face, bool random, uint64_t seed) {
  validate(box);
  check_count(per_face, "boundary: points per face");
  const int n = box.dim();
  int side = per_face;  // grid points per axis of an (n-1)-dimensional face
  if (!random && n > 1) {
    side = static_cast<int>(std::lround(std::pow(per_face, 1.0 / (n - 1))));
    long check = 1;
    for (int i = 0; i < n - 1; ++i) check *= side;
    if (check != per_face)
      throw UsageError("boundary: a grid on each face needs a perfect power of " + std::to_string(n - 1) +
                       " points per face, got " + std::to_string(per_face));
  }
  Rng rng(seed);
  std::vector<double> out;
  out.reserve(static_cast<size_t>(2) * n * per_face * n);
  for (int axis = 0; axis < n; ++axis)
    for (int upper = 0; upper < 2; ++upper) {
      const double fixed = upper ? box.hi[axis] : box.lo[axis];
      std::vector<std::vector<double>> axes;
      for (int i = 0; i < n; ++i)
        if (i != axis) axes.push_back(interior_axis(box.lo[i], box.hi[i], side));
      const std::vector<double> face = random || n == 1 ? std::vector<double>() : tensor_grid(axes);
      for (int p = 0; p < (n == 1 ? 1 : per_face); ++p) {
        int f = 0;
        for (int i = 0; i < n; ++i) {
          if (i == axis) {
            out.push_back(fixed);
          } else if (random) {
            out.push_back(box.lo[i] + rng.uniform() * (box.hi[i] - box.lo[i]));
          } else {
            out.push_back(face[static_cast<size_t>(p) * (n - 1) + f]);
          }
          f += i != axis;
        }
      }
    }
  return out;
}

std::vector<double> read_points_npy(const std::string& path, const Box& box) {
  validate(box);
  const int n = box.dim();
  const std::string what = "--points";
  const std::string b = read_regular_file(path, what, (size_t{1} << 24) * 3 * 8 + 4096);
  const std::string bad = what + " " + path + ": ";
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) throw UsageError(bad + "not a .npy file");
  const int major = static_cast<unsigned char>(b[6]);
  size_t hlen = 0, off = 0;
  if (major == 1) {
    hlen = static_cast<unsigned char>(b[8]) | (static_cast<size_t>(static_cast<unsigned char>(b[9])) << 8);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw UsageError(bad + "truncated header");
    for (int k = 0; k < 4; ++k) hlen |= static_cast<size_t>(static_cast<unsigned char>(b[8 + k])) << (8 * k);
    off = 12;
  } else {
    throw UsageError(bad + "unknown .npy version " + std::to_string(major));
  }
  if (off + hlen > b.size()) throw UsageError(bad + "truncated header");
  std::string header = b.substr(off, hlen);
  header.erase(std::remove_if(header.begin(), header.end(), [](char c) { return c == ' '; }), header.end());
  if (header.find("'descr':'<f8'") == std::string::npos)
    throw UsageError(bad + "the points must be float64 (little-endian '<f8')");
  if (header.find("'fortran_order':False") == std::string::npos) throw UsageError(bad + "the array must be in C order");
  const auto s0 = header.find("'shape':(");
  const auto s1 = s0 == std::string::npos ? s0 : header.find(')', s0);
  if (s1 == std::string::npos) throw UsageError(bad + "no shape in the header");
  const std::string shape = header.substr(s0 + 9, s1 - s0 - 9);
  long rows = -1, cols = -1;
  char tail = 0;
  if (std::sscanf(shape.c_str(), "%ld,%ld%c", &rows, &cols, &tail) < 2 || rows < 1 || cols < 1)
    throw UsageError(bad + "the array must have shape (N, " + std::to_string(n) + "), got (" + shape + ")");
  if (cols != n)
    throw UsageError(bad + std::to_string(cols) + " coordinates per point, the problem has " + std::to_string(n));
  check_count(rows, "--points: points");
  const size_t data = off + hlen, count = static_cast<size_t>(rows) * n;
  if (b.size() != data + count * 8) throw UsageError(bad + "the data does not match the shape");
  std::vector<double> out(count);
  std::memcpy(out.data(), b.data() + data, count * 8);  // x86-64 and arm64 are little-endian
  for (size_t q = 0; q < count; ++q) {
    const int i = static_cast<int>(q % n);
    // Numpy's indices, from 0: the array's entry [point, coordinate].
    const std::string where = "entry [" + std::to_string(q / n) + ", " + std::to_string(i) + "]";
    if (!std::isfinite(out[q])) throw UsageError(bad + where + " is not finite");
    if (out[q] < box.lo[i] || out[q] > box.hi[i]) throw UsageError(bad + where + " lies outside the domain");
  }
  return out;
}

}  // namespace pinntk
