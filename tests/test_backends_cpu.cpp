// The per-backend suites (tests/backend_suite.hpp: Ntk, Train, Divergence, Lm, Nd) on the CPU backend; the CUDA
// backend meets the same bodies in pinntk_gpu_tests (test_gpu_suites.cpp).
#include "tests/backend_suite.hpp"  // the fixtures, cpu_case, PINNTK_BACKEND_SUITE

namespace pinntk::testing {

PINNTK_BACKEND_SUITE(Ntk, cpu_case());
PINNTK_BACKEND_SUITE(Train, cpu_case());
PINNTK_BACKEND_SUITE(Divergence, cpu_case());
PINNTK_BACKEND_SUITE(Lm, cpu_case());
PINNTK_BACKEND_SUITE(Nd, cpu_case());
PINNTK_BACKEND_SUITE(Batch, cpu_case());

}  // namespace pinntk::testing
