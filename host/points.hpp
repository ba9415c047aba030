// Points in a box [a1,b1] x ... x [an,bn] for the n-dimensional problems (issue: the paper's problem (3) in n
// dimensions): interior points on a tensor grid, from a scrambled Sobol sequence or uniform at random; boundary
// points on the 2n faces; and point sets read from a user's .npy file (N x n), checked before use. Every set is
// N x n, row-major, reproducible from its seed.
#pragma once

#include <cstdint>  // uint64_t
#include <string>   // std::string
#include <vector>   // std::vector

namespace pinntk {

struct Box {
  std::vector<double> lo, hi;  // one entry per coordinate
  int dim() const { return static_cast<int>(lo.size()); }
};

// Throws UsageError unless 1 <= n <= 3 and every lo < hi is finite with a finite length.
void validate(const Box& box);

// The interior tensor grid with per_axis[i] points on axis i, x = a + (j + 1)(b - a)/(k + 1): no point on a face.
std::vector<double> grid_points(const Box& box, const std::vector<int>& per_axis);

// The closed tensor grid with per_axis[i] >= 2 points on axis i from a to b, faces included (test sets, pictures).
std::vector<double> closed_grid_points(const Box& box, const std::vector<int>& per_axis);

// count points of a Sobol sequence (Boost's sobol, the Joe-Kuo direction numbers) under a random digital shift
// drawn from seed (an XOR of each coordinate's 64 bits, which keeps the sequence's net structure), mapped to box.
std::vector<double> sobol_points(const Box& box, int count, uint64_t seed);

// count points uniform at random in box.
std::vector<double> uniform_points(const Box& box, int count, uint64_t seed);

// per_face points on each of the 2n faces (lower face of axis 0, upper face of axis 0, lower of axis 1, ...): on a
// face's interior tensor grid (random = false; per_face must then be a perfect (n-1)-th power) or uniform at random.
std::vector<double> face_points(const Box& box, int per_face, bool random, uint64_t seed);

// A float64 .npy array of shape (N, n), C order, finite and inside box: someone else's point set, exactly.
// Throws UsageError naming the file and what is wrong (width, NaN, a point outside the box, format).
std::vector<double> read_points_npy(const std::string& path, const Box& box);

}  // namespace pinntk
