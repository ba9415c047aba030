// Points for the n-dimensional problems (host/points.hpp): shapes, boxes, faces, reproducible seeds, and a user's
// .npy point file read exactly or refused with the reason.
#include <gtest/gtest.h>

#include <cmath>       // NAN
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ofstream
#include <string>      // std::string
#include <vector>      // std::vector

#include "common/errors.hpp"  // UsageError
#include "host/io/npy.hpp"    // npy_bytes
#include "host/points.hpp"    // Box, grid_points, sobol_points, uniform_points, face_points, read_points_npy

namespace fs = std::filesystem;

namespace pinntk {
namespace {

const Box kSquare{{0.0, -1.0}, {1.0, 2.0}};
const Box kCube{{0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}};

void expect_inside(const std::vector<double>& pts, const Box& box, bool closed) {
  const int n = box.dim();
  ASSERT_EQ(pts.size() % n, 0u);
  for (size_t q = 0; q < pts.size(); ++q) {
    const int i = static_cast<int>(q % n);
    if (closed) {
      EXPECT_GE(pts[q], box.lo[i]) << q;
      EXPECT_LE(pts[q], box.hi[i]) << q;
    } else {
      EXPECT_GT(pts[q], box.lo[i]) << q;
      EXPECT_LT(pts[q], box.hi[i]) << q;
    }
  }
}

TEST(Points, InteriorSetsHaveTheirShapeStayInsideAndRepeatFromTheSeed) {
  const std::vector<double> g = grid_points(kSquare, {4, 3});
  ASSERT_EQ(g.size(), 4u * 3u * 2u);
  expect_inside(g, kSquare, false);
  EXPECT_DOUBLE_EQ(g[0], 0.2);  // x = a + (j + 1)(b - a)/(k + 1)
  EXPECT_DOUBLE_EQ(g[1], -0.25);
  for (auto* sample : {&sobol_points, &uniform_points}) {
    const std::vector<double> a = sample(kCube, 257, 9), b = sample(kCube, 257, 9), c = sample(kCube, 257, 10);
    ASSERT_EQ(a.size(), 257u * 3u);
    expect_inside(a, kCube, true);
    EXPECT_EQ(a, b);  // same seed, same points
    EXPECT_NE(a, c);
  }
}

TEST(Points, SobolPointsFillTheBoxEvenly) {
  // A digitally shifted Sobol net: the first 2^k points put exactly 2^(k-2) points in each quarter of the square
  // along any axis-aligned halving (a (0, k, 2)-net property), where random points scatter.
  const Box unit{{0.0, 0.0}, {1.0, 1.0}};
  const std::vector<double> p = sobol_points(unit, 256, 3);
  int quarter[2][2] = {{0, 0}, {0, 0}};
  for (size_t k = 0; k < 256; ++k) ++quarter[p[2 * k] < 0.5][p[2 * k + 1] < 0.5];
  for (auto& row : quarter)
    for (int c : row) EXPECT_EQ(c, 64);
}

TEST(Points, FacePointsLieOnEveryFace) {
  for (bool random : {false, true}) {
    const std::vector<double> f = face_points(kCube, 9, random, 4);  // 3 x 3 per face on the grid
    ASSERT_EQ(f.size(), 6u * 9u * 3u);
    for (int face = 0; face < 6; ++face)
      for (int p = 0; p < 9; ++p) {
        const double* x = &f[(static_cast<size_t>(face) * 9 + p) * 3];
        const int axis = face / 2;
        EXPECT_EQ(x[axis], face % 2 ? 1.0 : 0.0) << face << " " << p;
        for (int i = 0; i < 3; ++i) {
          EXPECT_GE(x[i], 0.0);
          EXPECT_LE(x[i], 1.0);
        }
      }
  }
  EXPECT_THROW(face_points(kCube, 8, false, 0), UsageError);  // not a square number
}

TEST(Points, ABadBoxOrCountIsRefused) {
  EXPECT_THROW(grid_points(Box{{0.0, 1.0}, {1.0, 1.0}}, {3, 3}), UsageError);
  EXPECT_THROW(grid_points(Box{{0.0, -1e308}, {1.0, 1e308}}, {3, 3}), UsageError);
  EXPECT_THROW(grid_points(kSquare, {3}), UsageError);
  EXPECT_THROW(sobol_points(kSquare, 0, 1), UsageError);
  EXPECT_THROW(uniform_points(Box{{0, 0, 0, 0}, {1, 1, 1, 1}}, 10, 1), UsageError);
}

fs::path write_npy(const std::string& name, const std::string& bytes) {
  const fs::path p = fs::path(PINNTK_TEST_TMP) / "points" / name;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

TEST(Points, APointFileIsReadExactlyOrRefusedWithTheReason) {
  const std::vector<double> pts = sobol_points(kSquare, 50, 2);
  const fs::path good = write_npy("good.npy", npy_bytes(pts, {50, 2}));
  EXPECT_EQ(read_points_npy(good.string(), kSquare), pts);
  auto refused = [&](const std::string& name, const std::string& bytes, const std::string& reason) {
    try {
      read_points_npy(write_npy(name, bytes).string(), kSquare);
      ADD_FAILURE() << name << " was accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
  };
  refused("width.npy", npy_bytes(std::vector<double>(pts.begin(), pts.begin() + 48), {16, 3}), "3 coordinates");
  std::vector<double> with_nan = pts;
  with_nan[7] = NAN;
  refused("nan.npy", npy_bytes(with_nan, {50, 2}), "entry [3, 1] is not finite");
  std::vector<double> outside = pts;
  outside[10] = 1.5;  // x beyond [0, 1]
  refused("outside.npy", npy_bytes(outside, {50, 2}), "entry [5, 0] lies outside the domain");
  refused("flat.npy", npy_bytes(pts, {100}), "shape (N, 2)");
  refused("text.npy", "x,y\n0,0\n", "not a .npy file");
  std::string truncated = npy_bytes(pts, {50, 2});
  truncated.resize(truncated.size() - 8);
  refused("short.npy", truncated, "does not match the shape");
  EXPECT_THROW(read_points_npy("/dev/zero", kSquare), UsageError);
}

}  // namespace
}  // namespace pinntk
