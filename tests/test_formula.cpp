// The formula engine of problem files (host/problemfile/formula.hpp): values against the std:: functions, exact
// derivatives against analytic ones and finite differences, powers and precedence, constants that refer to one
// another, one-line errors that name the formula, evaluation from many threads, and a rough speed figure.
#include <gtest/gtest.h>
#include <omp.h>  // omp_get_max_threads

#include <chrono>  // std::chrono::steady_clock
#include <cmath>   // std::sin, std::pow, M_PI, ...
#include <cstdio>  // std::printf
#include <map>     // std::map
#include <string>  // std::string
#include <thread>  // std::thread
#include <tuple>   // std::tuple
#include <vector>  // std::vector

#include "common/errors.hpp"  // UsageError
#include "host/problemfile/formula.hpp"
#include "tests/near.hpp"  // near

namespace pinntk {
namespace {

using testing::near;

#define REQUIRE_GINAC() \
  if (!formulas_available()) GTEST_SKIP() << "built without GiNaC"

const std::vector<std::string> kX = {"x"};
const std::map<std::string, double> kNone;
const std::map<std::string, double> kEps = {{"eps", 0.1}};

double at(const Formula& f, double x) { return f(&x); }

// The UsageError message of parse, or "" if it parses.
std::string parse_error(const std::string& text, const std::map<std::string, double>& constants = kEps) {
  try {
    Formula::parse("a", text, kX, constants);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

std::string resolve_error(const std::map<std::string, std::string>& constants) {
  try {
    resolve_constants(constants);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

// The Darcy coefficient of the multiscale benchmark, a = 1/(2.1 + 2 sin(x/eps)), and its first two derivatives.
double darcy_a(double x, double eps) { return 1.0 / (2.1 + 2.0 * std::sin(x / eps)); }
double darcy_da(double x, double eps) {
  const double d = 2.1 + 2.0 * std::sin(x / eps);
  return -2.0 * std::cos(x / eps) / eps / (d * d);
}
double darcy_d2a(double x, double eps) {
  const double d = 2.1 + 2.0 * std::sin(x / eps), c = std::cos(x / eps);
  return 2.0 * std::sin(x / eps) / (eps * eps * d * d) + 8.0 * c * c / (eps * eps * d * d * d);
}

const double kPoints[] = {0.13, 0.37, 0.71, 1.09, 2.53, -0.61};

TEST(Formula, WithoutGinacEveryParseIsRefusedWithTheReason) {
  if (formulas_available()) GTEST_SKIP() << "built with GiNaC";
  try {
    Formula::parse("a", "x", kX, kNone);
    FAIL() << "parsed without GiNaC";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("GiNaC"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_constants({{"eps", "0.1"}}), UsageError);
}

TEST(Formula, DefaultIsTheConstantZero) {
  const Formula f;
  EXPECT_EQ(f(nullptr), 0.0);
  EXPECT_TRUE(f.is_constant());
  EXPECT_EQ(f.num_vars(), 0);
  EXPECT_EQ(f.str(), "0");
  EXPECT_EQ(f.derivative(0)(nullptr), 0.0);
}

TEST(Formula, EachFunctionMatchesStd) {
  REQUIRE_GINAC();
  struct Case {
    const char* text;
    double (*ref)(double);
  };
  const Case cases[] = {
      {"sin(x)", [](double x) { return std::sin(x); }},
      {"cos(x)", [](double x) { return std::cos(x); }},
      {"tan(x)", [](double x) { return std::tan(x); }},
      {"exp(x)", [](double x) { return std::exp(x); }},
      {"log(x+1)", [](double x) { return std::log(x + 1); }},
      {"sqrt(x+1)", [](double x) { return std::sqrt(x + 1); }},
      {"abs(x)", [](double x) { return std::fabs(x); }},
      {"tanh(x)", [](double x) { return std::tanh(x); }},
      {"sinh(x)", [](double x) { return std::sinh(x); }},
      {"cosh(x)", [](double x) { return std::cosh(x); }},
      {"atan(x)", [](double x) { return std::atan(x); }},
      {"asin(x/3)", [](double x) { return std::asin(x / 3); }},
      {"acos(x/3)", [](double x) { return std::acos(x / 3); }},
      {"x*exp(-x^2) + log(2+x)*cos(3*x)",
       [](double x) { return x * std::exp(-x * x) + std::log(2 + x) * std::cos(3 * x); }},
  };
  for (const Case& c : cases) {
    const Formula f = Formula::parse("f", c.text, kX, kNone);
    EXPECT_EQ(f.num_vars(), 1);
    EXPECT_FALSE(f.is_constant()) << c.text;
    for (double x : kPoints) EXPECT_TRUE(near(at(f, x), c.ref(x), std::fabs(c.ref(x)), 1e-15)) << c.text << " x=" << x;
  }
}

TEST(Formula, ConstantsAndPi) {
  REQUIRE_GINAC();
  const Formula f = Formula::parse("f", "eps*sin(2*pi*x) + pi", kX, kEps);
  for (double x : kPoints) {
    const double ref = 0.1 * std::sin(2 * M_PI * x) + M_PI;
    EXPECT_TRUE(near(at(f, x), ref, std::fabs(ref), 1e-15)) << x;
  }
  const Formula c = Formula::parse("c", "2*pi/eps + sqrt(2)", kX, kEps);
  EXPECT_TRUE(c.is_constant());
  EXPECT_TRUE(near(at(c, 0.3), 2 * M_PI / 0.1 + std::sqrt(2.0), 70.0, 1e-15));
  EXPECT_TRUE(Formula::parse("z", "x - x", kX, kNone).is_constant());
  EXPECT_NE(Formula::parse("s", "x^2", kX, kNone).str().find("x^2"), std::string::npos);
}

TEST(Formula, TwoAndThreeVariables) {
  REQUIRE_GINAC();
  const Formula f = Formula::parse("f", "x^2*y + sin(x*y)", {"x", "y"}, kNone);
  EXPECT_EQ(f.num_vars(), 2);
  const Formula g = Formula::parse("g", "exp(-(x^2+y^2+z^2))*cos(z) - y", {"x", "y", "z"}, kNone);
  EXPECT_EQ(g.num_vars(), 3);
  for (double x : kPoints) {
    const double p[3] = {x, 0.5 - x, 0.25 * x + 0.3};
    const double rf = p[0] * p[0] * p[1] + std::sin(p[0] * p[1]);
    const double rg = std::exp(-(p[0] * p[0] + p[1] * p[1] + p[2] * p[2])) * std::cos(p[2]) - p[1];
    EXPECT_TRUE(near(f(p), rf, std::fabs(rf), 1e-14)) << x;
    EXPECT_TRUE(near(g(p), rg, std::fabs(rg), 1e-14)) << x;
  }
  // A formula in (x, y) need not use x.
  EXPECT_FALSE(Formula::parse("h", "y", {"x", "y"}, kNone).is_constant());
}

TEST(Formula, DarcyDerivativesMatchTheAnalyticOnes) {
  REQUIRE_GINAC();
  const Formula a = Formula::parse("a", "1/(2.1+2*sin(x/eps))", kX, kEps);
  const Formula da = a.derivative(0), d2a = da.derivative(0);
  for (double x : kPoints) {
    EXPECT_TRUE(near(at(a, x), darcy_a(x, 0.1), std::fabs(darcy_a(x, 0.1)), 1e-14)) << x;
    EXPECT_TRUE(near(at(da, x), darcy_da(x, 0.1), std::fabs(darcy_da(x, 0.1)), 1e-13)) << x;
    EXPECT_TRUE(near(at(d2a, x), darcy_d2a(x, 0.1), std::fabs(darcy_d2a(x, 0.1)), 1e-13)) << x;
    // A central difference checks the derivative without trusting the analytic formula: O(h^2) truncation
    // (|a'''| h^2 / 6 with a''' ~ 1e4) plus rounding eps/h.
    const double h = 1e-6;
    const double fd = (at(a, x + h) - at(a, x - h)) / (2 * h);
    EXPECT_TRUE(near(at(da, x), fd, std::fabs(fd), 1e-6, 1e-6)) << x;
    const double fd2 = (at(da, x + h) - at(da, x - h)) / (2 * h);
    EXPECT_TRUE(near(at(d2a, x), fd2, std::fabs(fd2), 1e-6, 1e-4)) << x;
  }
}

TEST(Formula, PartialDerivativesIn2D) {
  REQUIRE_GINAC();
  const Formula f = Formula::parse("f", "x^2*y^3 + sin(x*y)", {"x", "y"}, kNone);
  const Formula fx = f.derivative(0), fy = f.derivative(1), fxy = fx.derivative(1);
  EXPECT_THROW(f.derivative(2), std::out_of_range);
  for (double x : kPoints) {
    const double p[2] = {x, 1.3 - 0.4 * x};
    const double X = p[0], Y = p[1];
    const double rx = 2 * X * Y * Y * Y + Y * std::cos(X * Y), ry = 3 * X * X * Y * Y + X * std::cos(X * Y);
    const double rxy = 6 * X * Y * Y + std::cos(X * Y) - X * Y * std::sin(X * Y);
    EXPECT_TRUE(near(fx(p), rx, std::fabs(rx), 1e-14)) << x;
    EXPECT_TRUE(near(fy(p), ry, std::fabs(ry), 1e-14)) << x;
    EXPECT_TRUE(near(fxy(p), rxy, std::fabs(rxy), 1e-13)) << x;
  }
  // d/dx of a formula without x is the constant 0.
  EXPECT_TRUE(Formula::parse("g", "y^2", {"x", "y"}, kNone).derivative(0).is_constant());
}

TEST(Formula, DerivativesOfEveryFunction) {
  REQUIRE_GINAC();
  struct Case {
    const char* text;
    double (*d)(double);
  };
  const Case cases[] = {
      {"tan(x)", [](double x) { return 1 / (std::cos(x) * std::cos(x)); }},
      {"log(x+1)", [](double x) { return 1 / (x + 1); }},
      {"sqrt(x+1)", [](double x) { return 0.5 / std::sqrt(x + 1); }},
      {"abs(x)", [](double x) { return x > 0 ? 1.0 : -1.0; }},
      {"tanh(x)", [](double x) { return 1 - std::tanh(x) * std::tanh(x); }},
      {"atan(x)", [](double x) { return 1 / (1 + x * x); }},
      {"asin(x/3)", [](double x) { return 1 / std::sqrt(9 - x * x); }},
      {"acos(x/3)", [](double x) { return -1 / std::sqrt(9 - x * x); }},
      {"x^x", [](double x) { return std::pow(x, x) * (std::log(x) + 1); }},
  };
  for (const Case& c : cases) {
    const Formula d = Formula::parse("f", c.text, kX, kNone).derivative(0);
    for (double x : kPoints) {
      if (x < 0 && std::string(c.text) == "x^x") continue;
      EXPECT_TRUE(near(at(d, x), c.d(x), std::fabs(c.d(x)), 1e-14)) << c.text << " x=" << x << ": " << d.str();
    }
  }
}

TEST(Formula, IntegerAndFractionalPowers) {
  REQUIRE_GINAC();
  struct Case {
    const char* text;
    double exponent;
  };
  const Case cases[] = {{"x^2", 2},     {"x^3", 3},     {"x^7", 7},        {"x^20", 20},       {"x^(-1)", -1},
                        {"x^(-2)", -2}, {"x^-3", -3},   {"x^0.5", 0.5},    {"x^(-1/2)", -0.5}, {"x^(1/3)", 1.0 / 3},
                        {"x^2.5", 2.5}, {"x^2.0", 2.0}, {"sqrt(x)^3", 1.5}};
  for (const Case& c : cases) {
    const Formula f = Formula::parse("p", c.text, kX, kNone);
    for (double x : {0.3, 1.7, 2.9}) {
      const double ref = std::pow(x, c.exponent);
      EXPECT_TRUE(near(at(f, x), ref, std::fabs(ref), 4e-15)) << c.text << " x=" << x;
    }
  }
  const Formula e = Formula::parse("e", "2^x + x^eps", kX, kEps);
  EXPECT_TRUE(near(at(e, 1.7), std::pow(2.0, 1.7) + std::pow(1.7, 0.1), 5.0, 1e-15));
}

TEST(Formula, NegativeBasesWithIntegerPowers) {
  REQUIRE_GINAC();
  EXPECT_EQ(at(Formula::parse("p", "(-2)^3", kX, kNone), 0.0), -8.0);
  EXPECT_EQ(at(Formula::parse("p", "x^3", kX, kNone), -2.0), -8.0);
  EXPECT_EQ(at(Formula::parse("p", "x^(-3)", kX, kNone), -2.0), -0.125);
  EXPECT_EQ(at(Formula::parse("p", "x^4", kX, kNone), -1.5), 5.0625);
  EXPECT_EQ(at(Formula::parse("p", "(x-3)^5", kX, kNone), 1.0), -32.0);
  EXPECT_EQ(at(Formula::parse("p", "x^2.0", kX, kNone), -3.0), 9.0);
  // A fractional power of a negative base is NaN, as std::pow makes it; callers check.
  EXPECT_TRUE(std::isnan(at(Formula::parse("p", "x^0.5", kX, kNone), -4.0)));
  EXPECT_TRUE(std::isnan(at(Formula::parse("p", "log(x)", kX, kNone), -1.0)));
  EXPECT_TRUE(std::isinf(at(Formula::parse("p", "1/x", kX, kNone), 0.0)));
}

TEST(Formula, UnaryMinusBindsLooserThanPower) {
  REQUIRE_GINAC();
  EXPECT_EQ(at(Formula::parse("m", "-x^2", kX, kNone), 3.0), -9.0);
  EXPECT_EQ(at(Formula::parse("m", "2*-x", kX, kNone), 3.0), -6.0);
  EXPECT_EQ(at(Formula::parse("m", "-x-1", kX, kNone), 3.0), -4.0);
  EXPECT_EQ(at(Formula::parse("m", "-(x+1)^2", kX, kNone), 3.0), -16.0);
  EXPECT_EQ(at(Formula::parse("m", "1-x/2", kX, kNone), 3.0), -0.5);
  EXPECT_EQ(at(Formula::parse("m", "2^-x", kX, kNone), 3.0), 0.125);
  EXPECT_EQ(at(Formula::parse("m", "-1/x", kX, kNone), 4.0), -0.25);
  EXPECT_EQ(at(Formula::parse("m", "1e-3*x + .5", kX, kNone), 2.0), 0.502);
}

TEST(Formula, ResolveConstantsInAnyOrder) {
  REQUIRE_GINAC();
  const auto c = resolve_constants({{"k", "omega/eps"}, {"omega", "2*pi"}, {"eps", "1/8"}, {"c", "3"}});
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c.at("eps"), 0.125);
  EXPECT_EQ(c.at("omega"), 2 * M_PI);
  EXPECT_TRUE(near(c.at("k"), 16 * M_PI, 16 * M_PI, 1e-15));
  EXPECT_EQ(c.at("c"), 3.0);
  // The resolved constants feed parse.
  const Formula f = Formula::parse("f", "sin(k*x)", kX, c);
  EXPECT_TRUE(near(at(f, 0.3), std::sin(16 * M_PI * 0.3), 1.0, 1e-14));
  EXPECT_TRUE(resolve_constants({}).empty());
}

TEST(Formula, ResolveConstantsRefusesCyclesUnknownsAndBadValues) {
  REQUIRE_GINAC();
  std::string m = resolve_error({{"a", "b+1"}, {"b", "2*a"}, {"c", "3"}});
  EXPECT_NE(m.find("cycle"), std::string::npos) << m;
  EXPECT_NE(m.find("a = \"b+1\""), std::string::npos) << m;
  EXPECT_NE(m.find("b = \"2*a\""), std::string::npos) << m;
  EXPECT_EQ(m.find("c ="), std::string::npos) << m;
  m = resolve_error({{"a", "a"}});
  EXPECT_NE(m.find("cycle"), std::string::npos) << m;
  m = resolve_error({{"a", "q+1"}});
  EXPECT_EQ(m, "constant \"a\": unknown name 'q' in \"q+1\" (known: a, pi)");
  m = resolve_error({{"a", "exp(1000)"}});
  EXPECT_NE(m.find("not finite"), std::string::npos) << m;
  m = resolve_error({{"a", "sqrt(-1)"}});
  EXPECT_NE(m.find("not a real number"), std::string::npos) << m;
  m = resolve_error({{"a", "1/0"}});
  EXPECT_NE(m.find("constant \"a\""), std::string::npos) << m;
  m = resolve_error({{"a", ""}});
  EXPECT_NE(m.find("empty"), std::string::npos) << m;
  m = resolve_error({{"a", "zeta(2)"}});
  EXPECT_NE(m.find("unsupported function 'zeta'"), std::string::npos) << m;
  for (const char* taken : {"x", "y", "z", "pi", "I", "sin"}) {
    m = resolve_error({{taken, "1"}});
    EXPECT_NE(m.find("taken"), std::string::npos) << taken << ": " << m;
  }
  EXPECT_NE(resolve_error({{"2a", "1"}}), "");
}

TEST(Formula, ErrorsNameTheFormulaTextAndReason) {
  REQUIRE_GINAC();
  EXPECT_EQ(parse_error("1/(2+q)"), "formula \"a\": unknown name 'q' in \"1/(2+q)\" (known: x, eps, pi)");
  std::string m = parse_error("1+");
  EXPECT_EQ(m.rfind("formula \"a\": syntax error", 0), 0u) << m;
  EXPECT_NE(m.find("in \"1+\""), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  m = parse_error("zeta(x)");
  EXPECT_NE(m.find("unsupported function 'zeta'"), std::string::npos) << m;
  m = parse_error("step(x)");
  EXPECT_NE(m.find("unsupported function 'step'"), std::string::npos) << m;
  m = parse_error("x(2)");
  EXPECT_NE(m.find("'x' is not a function"), std::string::npos) << m;
  m = parse_error("sin*x");
  EXPECT_NE(m.find("'sin'"), std::string::npos) << m;
  m = parse_error("2^3^2");
  EXPECT_NE(m.find("ambiguous"), std::string::npos) << m;
  m = parse_error("x==1");
  EXPECT_NE(m.find("unexpected character '='"), std::string::npos) << m;
  m = parse_error("I*x");
  EXPECT_NE(m.find("unknown name 'I'"), std::string::npos) << m;
  m = parse_error("sin(x,x)");
  EXPECT_EQ(m.rfind("formula \"a\": syntax error", 0), 0u) << m;
  m = parse_error("2x");
  EXPECT_EQ(m.rfind("formula \"a\": syntax error", 0), 0u) << m;
  m = parse_error("x + 1/0");
  EXPECT_NE(m.find("formula \"a\""), std::string::npos) << m;
  m = parse_error("x + sqrt(-1)");
  EXPECT_NE(m.find("not a real number"), std::string::npos) << m;
  EXPECT_NE(parse_error(""), "");
  EXPECT_NE(parse_error("  "), "");
  // A constant may not shadow a variable or a reserved name.
  EXPECT_NE(parse_error("x", {{"x", 1.0}}), "");
  EXPECT_NE(parse_error("x", {{"pi", 3.0}}), "");
  EXPECT_NE(parse_error("x", {{"Euler", 3.0}}), "");
}

TEST(Formula, ManyThreadsGetTheSerialValues) {
  REQUIRE_GINAC();
  const Formula a = Formula::parse("a", "1/(2.1+2*sin(x/eps))", kX, kEps);
  const Formula da = a.derivative(0);
  const int n = 200000;
  std::vector<double> serial(2 * n), parallel(2 * n);
  for (int i = 0; i < n; ++i) {
    const double x = i * (1.0 / n);
    serial[2 * i] = a(&x);
    serial[2 * i + 1] = da(&x);
  }
#pragma omp parallel for schedule(static, 1)
  for (int i = 0; i < n; ++i) {
    const double x = i * (1.0 / n);
    parallel[2 * i] = a(&x);
    parallel[2 * i + 1] = da(&x);
  }
  EXPECT_EQ(serial, parallel);

  // Parsing, differentiating and dropping formulas from several threads at once (GiNaC's reference counts are
  // not atomic; the engine serializes them).
  std::vector<std::thread> threads;
  std::vector<int> bad(8, 0);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 50; ++k) {
        const Formula f = Formula::parse("f", "x^2*sin(x) + " + std::to_string(t), kX, kNone);
        const Formula g = f.derivative(0);
        const double x = 0.5;
        const double ref = 2 * x * std::sin(x) + x * x * std::cos(x);
        if (!near(g(&x), ref, std::fabs(ref), 1e-14) || g.str().empty()) ++bad[t];
        (void)a.derivative(0);
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(bad[t], 0) << t;
}

TEST(Formula, SpeedOfTheDarcyCoefficient) {
  REQUIRE_GINAC();
  const Formula a = Formula::parse("a", "1/(2.1+2*sin(x/eps))", kX, kEps);
  const Formula da = a.derivative(0);
  const int n = 2000000;
  for (const auto& [name, f, ref] :
       {std::tuple<const char*, const Formula*, double (*)(double, double)>{"a", &a, darcy_a}, {"a'", &da, darcy_da}}) {
    double sum = 0.0, sum_ref = 0.0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      const double x = i * (1.0 / n);
      sum += (*f)(&x);
    }
    const auto t1 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) sum_ref += ref(i * (1.0 / n), 0.1);
    const auto t2 = std::chrono::steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
    const double ns_ref = std::chrono::duration<double, std::nano>(t2 - t1).count() / n;
    std::printf("[ speed    ] %s = %s: %.1f ns per evaluation (hand-written C++: %.1f ns)\n", name, f->str().c_str(),
                ns, ns_ref);
    EXPECT_TRUE(near(sum, sum_ref, std::fabs(sum_ref), 1e-12));
  }
}

}  // namespace
}  // namespace pinntk
