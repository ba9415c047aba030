#include "host/backend.hpp"

#include <cstdio>  // std::fprintf

#include "common/errors.hpp"  // UsageError

namespace pinntk {

#ifndef PINNTK_HAVE_CUDA
std::unique_ptr<Backend> make_cuda_backend(bool) {
  throw UsageError("--device cuda: this pinntk was built without CUDA (no nvcc was found at configure time)");
}
int cuda_device_count() { return 0; }
#endif

std::unique_ptr<Backend> make_backend(const std::string& device, const std::string& precision, int threads) {
  if (precision != "fp64" && precision != "fp32")
    throw UsageError("--precision: unknown precision '" + precision + "' (known: fp64, fp32)");
  const bool single = precision == "fp32";
  if (device == "cpu") {
    if (single) throw UsageError("--precision fp32 is available on the CUDA backend only; the CPU computes in fp64");
    return make_cpu_backend(threads);
  }
  if (device == "cuda") {
    if (cuda_device_count() == 0)
      throw UsageError("--device cuda: no CUDA device answers on this machine (or no driver is installed)");
    return make_cuda_backend(single);
  }
  if (device == "auto") {
    if (cuda_device_count() > 0) return make_cuda_backend(single);
    if (single) throw UsageError("--precision fp32 needs a CUDA device; the CPU computes in fp64");
#ifdef PINNTK_HAVE_CUDA
    std::fprintf(stderr, "pinntk: no CUDA device answers; using the CPU\n");
#endif
    return make_cpu_backend(threads);
  }
  throw UsageError("--device: unknown device '" + device + "' (known: auto, cpu, cuda)");
}

}  // namespace pinntk
