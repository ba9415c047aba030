// One test body for every backend (xgboost style, /work/shared/STYLE.md): the suites whose fixtures are declared
// here (Ntk, Train, Divergence, Lm, Nd, Batch) are written once with TEST_P in test_ntk.cpp, test_train.cpp,
// test_lm.cpp, test_nd.cpp and test_batch.cpp,
// compiled once (the object library pinntk_backend_suites) and instantiated in each test binary for the backends
// it holds: test_backends_cpu.cpp for `cpu` (pinntk_tests), test_gpu_suites.cpp for `cuda_fp64` and `cuda_fp32`
// (pinntk_gpu_tests), so a backend cannot drift from the assertions the CPU meets without a test failing. A suite
// compiled into a binary but not instantiated there fails (GoogleTestVerification), so no binary can drop one.
//
// A body gets its backend from backend() and writes every relative tolerance as tol(x), x the one fp64 needs;
// bitwise expectations (EXPECT_EQ on doubles) compare two results of one backend only.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <memory>     // std::unique_ptr
#include <ostream>    // std::ostream
#include <string>     // std::string

#include "host/backend.hpp"  // Backend, make_cpu_backend, make_cuda_backend, cuda_device_count

namespace pinntk::testing {

struct BackendCase {
  const char* name;                               // the test name's suffix: cpu, cuda_fp64, cuda_fp32
  std::unique_ptr<Backend> (*make)(int threads);  // threads > 0 sets the CPU thread count; the device ignores it
  bool needs_device;                              // skipped (GTEST_SKIP, reported SKIPPED) where no CUDA device answers
  // Every relative tolerance of a body is at least this. 0 on the fp64 backends: their results differ from the
  // references only by summation order and FMA contraction, which the fp64 tolerances already allow (tests/near.hpp).
  double rtol_floor;
};

inline void PrintTo(const BackendCase& c, std::ostream* os) { *os << c.name; }

inline BackendCase cpu_case() {
  return {"cpu", [](int threads) { return make_cpu_backend(threads); }, false, 0.0};
}

#ifdef PINNTK_HAVE_CUDA
inline BackendCase cuda_fp64_case() {
  return {"cuda_fp64", [](int) { return make_cuda_backend(false); }, true, 0.0};
}
// fp32 (unit roundoff 6e-8): theta, the points and every product are rounded to fp32 and the Grams sum up to a few
// hundred such products. An fp32 emulation of these bodies on the host (the Jacobian by common/mlp_math.hpp in
// float, ssyrk, ssyevd, snrm2, sdot) stays within 2e-7 of their fp64 references; the CUDA-vs-CPU tests allow 1e-5 to
// 1e-4 in fp32 (test_gpu_backend.cpp). 1e-4 leaves a margin for cuBLAS's and the tile kernels' summation orders; an
// indexing or formula error is off by 1e-3 or more.
inline BackendCase cuda_fp32_case() {
  return {"cuda_fp32", [](int) { return make_cuda_backend(true); }, true, 1e-4};
}
#endif

// The fixture of every per-backend suite.
class BackendTest : public ::testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    if (GetParam().needs_device && cuda_device_count() == 0)
      GTEST_SKIP() << "no CUDA device answers: " << GetParam().name << " not tested";
  }
  std::unique_ptr<Backend> backend(int threads = 0) const { return GetParam().make(threads); }
  // The relative tolerance for a check that needs `fp64` on an fp64 backend.
  double tol(double fp64) const { return std::max(fp64, GetParam().rtol_floor); }
};

// One fixture per suite, so that the test names stay those of the suites (Backends/Ntk.<test>/cpu).
class Ntk : public BackendTest {};
class Train : public BackendTest {};
class Divergence : public BackendTest {};
class Lm : public BackendTest {};
class Nd : public BackendTest {};
class Batch : public BackendTest {};

struct BackendCaseName {
  std::string operator()(const ::testing::TestParamInfo<BackendCase>& info) const { return info.param.name; }
};

}  // namespace pinntk::testing

// Runs every test of `suite` (a fixture above) once per backend case given.
#define PINNTK_BACKEND_SUITE(suite, ...) \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values(__VA_ARGS__), ::pinntk::testing::BackendCaseName())
