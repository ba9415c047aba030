// PINNTK_CUDA_CHECK and PINNTK_LAUNCH_CHECK: throw std::runtime_error with file:line, the failing call and the
// CUDA error string. Every CUDA call and every kernel launch goes through them.
#pragma once

#include <cuda_runtime.h>  // cudaError_t, cudaGetErrorString, cudaGetLastError

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace pinntk {

inline void cuda_throw(cudaError_t err, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           " failed: " + cudaGetErrorString(err));
}

}  // namespace pinntk

#define PINNTK_CUDA_CHECK(call)                                                                   \
  do {                                                                                            \
    const cudaError_t pinntk_err_ = (call);                                                       \
    if (pinntk_err_ != cudaSuccess) ::pinntk::cuda_throw(pinntk_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define PINNTK_LAUNCH_CHECK() PINNTK_CUDA_CHECK(cudaGetLastError())
