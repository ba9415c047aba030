#include "host/blas_setup.hpp"

#include <unistd.h>  // execv

#include <cstdlib>  // getenv, setenv
#include <cstring>  // strcmp

extern "C" char* openblas_get_corename(void);  // OpenBLAS: the kernel family in use

namespace pinntk {

void ensure_fast_openblas_kernels(char** argv) {
#if defined(__x86_64__)
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::getenv("PINNTK_NO_REEXEC") != nullptr) return;
  const char* core = openblas_get_corename();
  if (core == nullptr || std::strcmp(core, "Prescott") != 0) return;  // a known CPU: OpenBLAS chose well
  const char* want = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl")) {
    want = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    want = "Haswell";
  }
  if (want == nullptr) return;
  setenv("OPENBLAS_CORETYPE", want, 1);
  setenv("PINNTK_NO_REEXEC", "1", 1);  // never loop
  execv("/proc/self/exe", argv);       // only returns on failure: then carry on with the slow kernels
#else
  (void)argv;
#endif
}

}  // namespace pinntk
