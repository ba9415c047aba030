// The settings of the CPU's batched passes (host/cpu_batched.hpp) that tests sweep: each instruction set this CPU
// has, chunks that do and do not divide the rows, with and without every channel for every row.
#pragma once

#include <string>  // std::string, std::to_string

#include "host/cpu_batched.hpp"  // BatchedWorkspace, BatchedIsa, batched_isa_available

namespace pinntk::testing {

// Calls f(workspace, chunk, description) for each instruction set this CPU has, chunks of 1, 7 and 256 rows, with
// and without every channel for every row; a fresh workspace each time.
template <class F>
void for_each_batched_setting(F f) {
  for (BatchedIsa isa : {BatchedIsa::kGeneric, BatchedIsa::kAvx2, BatchedIsa::kAvx512}) {
    if (!batched_isa_available(isa)) continue;
    for (int chunk : {1, 7, 256})
      for (bool all : {false, true}) {
        BatchedWorkspace ws;
        ws.isa = isa;
        ws.all_channels = all;
        f(ws, chunk,
          "isa " + std::to_string(static_cast<int>(isa)) + ", chunk " + std::to_string(chunk) +
              (all ? ", all channels" : ""));
      }
  }
}

}  // namespace pinntk::testing
