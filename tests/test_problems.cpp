// Problem presets, manufactured forcing against the paper's closed forms, and the value parsers.
#include <gtest/gtest.h>

#include <cmath>  // std::sin, std::cos

#include "common/errors.hpp"  // UsageError
#include "host/parse.hpp"     // parse_real, parse_layers, parse_schedule
#include "host/problem.hpp"   // problem_preset, build_points

namespace pinntk {
namespace {

// Appendix D: f = g/h for the Darcy BVP (28) with a(y) = 1/(2.1 + 2 sin y).
double appendix_d_forcing(double x, double eps) {
  const double pi = M_PI, c = std::cos(x), s = std::sin(x);
  const double g = 10.0 * (20 * pi + 168 * pi * eps * c * s -
                           20 * (2 * pi - 4 * pi * c * c + eps * std::sin(pi / eps)) * std::cos(x / eps) +
                           (21 * pi + 160 * pi * eps * c * s) * std::sin(x / eps));
  const double sy = std::sin(x / eps);
  const double h = 400 * pi * eps * sy * sy + 840 * pi * eps * sy + 441 * pi * eps;
  return g / h;
}

TEST(Problems, DarcyForcingMatchesAppendixD) {
  for (double eps : {1.0 / 8, 1.0 / 32, 1.0 / 64}) {
    ProblemSpec spec = problem_preset("darcy-twoscale");
    spec.eps = eps;
    const PointSet p = build_points(spec);
    for (int i = 0; i < p.nc; ++i) {
      const double ref = appendix_d_forcing(p.x[i], eps);
      EXPECT_NEAR(p.f[i], ref, 1e-11 * (1 + std::fabs(ref))) << "x = " << p.x[i];
    }
  }
}

TEST(Problems, PoissonForcingMatchesEquation27) {
  const ProblemSpec spec = problem_preset("poisson-twoscale");
  const PointSet p = build_points(spec);
  for (int i = 0; i < p.nc; ++i) {
    const double x = p.x[i];
    EXPECT_NEAR(p.f[i], 4 * std::sin(2 * x) + std::sin(x / spec.eps) / spec.eps, 1e-12);
  }
}

TEST(Problems, SinesForcingMatchesEquation4) {
  const PointSet p = build_points(problem_preset("poisson-sines"));
  for (int i = 0; i < p.nc; ++i) {
    const double x = p.x[i];
    EXPECT_NEAR(p.f[i], std::sin(x) + std::sin(5 * x) + std::sin(15 * x) + std::sin(55 * x), 1e-12);
  }
}

TEST(Problems, ExactSolutionsVanishOnTheBoundaryAndMatchFiniteDifferences) {
  for (const auto& name : problem_names()) {
    const ProblemSpec spec = problem_preset(name);
    EXPECT_NEAR(exact_solution(spec, -M_PI).v, 0.0, 1e-13) << name;
    EXPECT_NEAR(exact_solution(spec, M_PI).v, 0.0, 1e-13) << name;
    const double h = 1e-5;
    for (double x : {-1.3, 0.4, 2.2}) {
      const auto u = exact_solution(spec, x), up = exact_solution(spec, x + h), um = exact_solution(spec, x - h);
      EXPECT_NEAR(u.d1, (up.v - um.v) / (2 * h), 1e-6 * (1 + std::fabs(u.d1))) << name;
      EXPECT_NEAR(u.d2, (up.d1 - um.d1) / (2 * h), 1e-5 * (1 + std::fabs(u.d2))) << name;
    }
  }
}

TEST(Problems, DarcyNtkCoefficientUsesTwoPiOverEps) {
  ProblemSpec spec = problem_preset("darcy-ntk");
  spec.eps = 1.0 / 10;
  const PointSet p = build_points(spec);
  for (int i = 0; i < p.nc; ++i) {
    const double y = 2 * M_PI * p.x[i] / spec.eps;
    EXPECT_NEAR(p.alpha[i], -1.0 / (2.1 + 2 * std::sin(y)), 1e-12);
  }
}

TEST(Problems, RowsWeightsAndGrid) {
  const ProblemSpec spec = problem_preset("darcy-ntk");
  const PointSet p = build_points(spec);
  ASSERT_EQ(p.size(), 258);
  // No BLAS here: the grid ends and the weights are one scalar expression each, equal to within 4 ulps.
  EXPECT_DOUBLE_EQ(p.x.front(), -M_PI);
  EXPECT_DOUBLE_EQ(p.x[255], M_PI);
  EXPECT_DOUBLE_EQ(p.x[256], -M_PI);
  EXPECT_DOUBLE_EQ(p.x[257], M_PI);
  EXPECT_DOUBLE_EQ(p.w[0], 1.0 / 256);
  EXPECT_DOUBLE_EQ(p.w[257], spec.lambda / 2);
  EXPECT_DOUBLE_EQ(p.gamma[256], 1.0);
  ProblemSpec in = spec;
  in.grid = Grid::Interior;
  const PointSet q = build_points(in);
  EXPECT_GT(q.x.front(), -M_PI);
  EXPECT_LT(q.x[255], M_PI);
  const PointSet reg = build_points(problem_preset("regression-twoscale"));
  EXPECT_EQ(reg.size(), 403);
  EXPECT_DOUBLE_EQ(reg.w[0], 2.0 / 403);
}

TEST(Problems, InvalidSpecsAreRejected) {
  EXPECT_THROW(problem_preset("heat"), UsageError);
  ProblemSpec s = problem_preset("darcy-ntk");
  s.eps = 0;
  EXPECT_THROW(validate(s), UsageError);
  s = problem_preset("darcy-ntk");
  s.nc = 0;
  EXPECT_THROW(validate(s), UsageError);
  s = problem_preset("darcy-ntk");
  s.lambda = -1;
  EXPECT_THROW(validate(s), UsageError);
}

TEST(Parse, Numbers) {
  EXPECT_DOUBLE_EQ(parse_real("1/80", "x"), 0.0125);
  EXPECT_DOUBLE_EQ(parse_real("0.0125", "x"), 0.0125);
  EXPECT_DOUBLE_EQ(parse_real("pi", "x"), M_PI);
  EXPECT_DOUBLE_EQ(parse_real("-pi", "x"), -M_PI);
  EXPECT_DOUBLE_EQ(parse_real("2pi", "x"), 2 * M_PI);
  EXPECT_DOUBLE_EQ(parse_real("2*pi", "x"), 2 * M_PI);
  EXPECT_DOUBLE_EQ(parse_real("pi/2", "x"), M_PI / 2);
  for (const char* bad : {"", "abc", "1/0", "1/", "pipi", "nan", "inf", "1e999"})
    EXPECT_THROW(parse_real(bad, "x"), UsageError) << bad;
}

TEST(Parse, LayersAndSchedule) {
  EXPECT_EQ(parse_layers("1,50,1"), (std::vector<int>{1, 50, 1}));
  EXPECT_EQ(parse_layers("2,64,1"), (std::vector<int>{2, 64, 1}));  // n-D inputs: the problem checks n
  for (const char* bad : {"4,50,1", "1,50,2", "1,0,1", "1,1", "1,a,1", "", "1,-3,1"})
    EXPECT_THROW(parse_layers(bad), UsageError) << bad;
  const auto s = parse_schedule("10000@1e-4,20@1e-5");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].iterations, 10000);
  EXPECT_DOUBLE_EQ(s[1].lr, 1e-5);
  for (const char* bad : {"100", "100@", "@1e-3", "0@1e-3", "10@-1", "10@x", "10@1e-3,", "1.5@1e-3"})
    EXPECT_THROW(parse_schedule(bad), UsageError) << bad;
  const auto d = parse_domain("-pi,pi");
  EXPECT_DOUBLE_EQ(d.first, -M_PI);
  EXPECT_THROW(parse_domain("1,0"), UsageError);
  EXPECT_THROW(parse_domain("1"), UsageError);
}

}  // namespace
}  // namespace pinntk
