// NvtxRange: an RAII NVTX range (header-only nvtx3 from the CUDA toolkit), so an Nsight timeline shows each
// phase (forward, Jacobian, gradient, optimizer step, syrk, syevd) by name.
#pragma once

#include <nvtx3/nvToolsExt.h>  // nvtxRangePushA, nvtxRangePop

namespace pinntk {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace pinntk
