// The per-backend suites (tests/backend_suite.hpp) on the CUDA backend: the bodies the CPU backend meets in
// pinntk_tests (test_backends_cpu.cpp), skipped (reported SKIPPED) where no CUDA device answers.
#include "tests/backend_suite.hpp"  // the fixtures, cuda_fp64_case, cuda_fp32_case, PINNTK_BACKEND_SUITE

namespace pinntk::testing {

// fp32 with the looser floor of cuda_fp32_case. Resume and divergence stay bitwise within the backend in fp32 too:
// fp32 values round-trip exactly through double and the resume file, and the kernels' reduction order is fixed.
PINNTK_BACKEND_SUITE(Ntk, cuda_fp64_case(), cuda_fp32_case());
PINNTK_BACKEND_SUITE(Train, cuda_fp64_case(), cuda_fp32_case());
PINNTK_BACKEND_SUITE(Divergence, cuda_fp64_case(), cuda_fp32_case());
// The n-dimensional rows (n = 2, 3) through the tile kernels' direction-count instances.
PINNTK_BACKEND_SUITE(Nd, cuda_fp64_case(), cuda_fp32_case());
PINNTK_BACKEND_SUITE(Batch, cuda_fp64_case(), cuda_fp32_case());
// fp64 only: the Lm bodies test exactness as mu -> 0 (damping down to 1e-14 of the Gram's scale, steps to 1e-8),
// which an fp32 Gram cannot resolve. LM in fp32 is GpuBackend.LevenbergMarquardtInSinglePrecisionDescends and
// GpuBackend.LevenbergMarquardtPredictedReductionKeepsItsDigits (test_gpu_backend.cpp).
PINNTK_BACKEND_SUITE(Lm, cuda_fp64_case());

}  // namespace pinntk::testing
