#include "host/backend.hpp"

#include <iostream>  // std::cerr

#include "host/errors.hpp"  // UsageError

namespace pinntk {

std::unique_ptr<Backend> make_backend(const std::string& device, int threads) {
  if (device == "cpu") return make_cpu_backend(threads);
  if (device == "cuda")
    throw UsageError("--device cuda: the CUDA backend is not available in this version of pinntk; use --device cpu");
  if (device == "auto") return make_cpu_backend(threads);
  throw UsageError("--device: unknown device '" + device + "' (known: auto, cpu, cuda)");
}

}  // namespace pinntk
