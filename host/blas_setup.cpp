#include "host/blas_setup.hpp"

#include <unistd.h>  // execv

#include <cstdlib>  // getenv, setenv
#include <cstring>  // strcmp

extern "C" char* openblas_get_corename(void);  // OpenBLAS: the kernel family in use

namespace pinntk {

namespace {

// The kernel family OpenBLAS should use, or nullptr when its own choice is fine (or nothing better is supported).
const char* better_openblas_core() {
#if defined(__x86_64__)
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return nullptr;
  const char* core = openblas_get_corename();
  if (core == nullptr || std::strcmp(core, "Prescott") != 0) return nullptr;  // a known CPU: OpenBLAS chose well
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

}  // namespace

void ensure_fast_openblas_kernels(char** argv) {
  if (std::getenv("PINNTK_NO_REEXEC") != nullptr) return;
  bool changed = false;
  if (const char* core = better_openblas_core()) {
    setenv("OPENBLAS_CORETYPE", core, 1);
    changed = true;
  }
  if (std::getenv("GOMP_SPINCOUNT") == nullptr && std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("GOMP_SPINCOUNT", "10000", 1);
    changed = true;
  }
  if (!changed) return;
  setenv("PINNTK_NO_REEXEC", "1", 1);  // never loop
  execv("/proc/self/exe", argv);       // only returns on failure: then carry on as we are
}

}  // namespace pinntk
