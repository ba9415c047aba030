#include "host/backend.hpp"

#include <cstdio>     // std::fprintf
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string, std::to_string

#include "common/errors.hpp"  // UsageError

namespace pinntk {

#ifndef PINNTK_HAVE_CUDA
std::unique_ptr<Backend> make_cuda_backend(bool) {
  throw UsageError(
      "--device cuda: this pinntk was built without CUDA (PINNTK_ENABLE_CUDA=OFF, or no nvcc at configure "
      "time)");
}
int cuda_device_count() { return 0; }
#endif

void check_batch(const std::vector<Mlp>& nets, const std::vector<PointSet>& pts) {
  const std::string where = "batch_train_session: ";
  if (nets.empty()) throw std::invalid_argument(where + "a batch needs at least one network");
  if (pts.size() != nets.size())
    throw std::invalid_argument(where + std::to_string(nets.size()) + " networks but " + std::to_string(pts.size()) +
                                " point sets");
  for (size_t b = 0; b < nets.size(); ++b) {
    if (nets[b].layers != nets[0].layers)
      throw std::invalid_argument(where + "member " + std::to_string(b) + "'s layers differ from member 0's");
    if (nets[b].theta.size() != static_cast<size_t>(nets[0].n_params()))
      throw std::invalid_argument(where + "member " + std::to_string(b) + " has " +
                                  std::to_string(nets[b].theta.size()) + " parameters, its layers " +
                                  std::to_string(nets[0].n_params()));
    if (pts[b].dim != pts[0].dim || pts[b].nc != pts[0].nc || pts[b].nb != pts[0].nb)
      throw std::invalid_argument(where + "member " + std::to_string(b) + "'s rows (" + std::to_string(pts[b].nc) +
                                  " + " + std::to_string(pts[b].nb) + " in " + std::to_string(pts[b].dim) +
                                  "-D) differ from member 0's (" + std::to_string(pts[0].nc) + " + " +
                                  std::to_string(pts[0].nb) + " in " + std::to_string(pts[0].dim) + "-D)");
  }
}

bool device_is_cpu(const std::string& device) {
  return device == "cpu" || (device == "auto" && cuda_device_count() == 0);
}

std::unique_ptr<Backend> make_backend(const std::string& device, const std::string& precision, int threads) {
  if (precision != "fp64" && precision != "fp32")
    throw UsageError("--precision: unknown precision '" + precision + "' (known: fp64, fp32)");
  const bool single = precision == "fp32";
  if (device == "cpu") {
    if (single) throw UsageError("--precision fp32 is available on the CUDA backend only; the CPU computes in fp64");
    return make_cpu_backend(threads);
  }
  if (device == "cuda") {
#ifndef PINNTK_HAVE_CUDA
    return make_cuda_backend(single);  // says that this build has no CUDA
#endif
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
