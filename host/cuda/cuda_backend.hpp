// What the CUDA backend (host/cuda/cuda_backend.cu) offers beyond host/backend.hpp: a knob of its Adam sessions for
// benchmarks and tests.
#pragma once

namespace pinntk {

// The Adam steps a session's long CUDA graph captures: run(steps) launches it steps / kStepsPerGraph times, then the
// one-step graph for the rest (the same kernels in the same order as one graph launch per step, bit for bit).
constexpr int kStepsPerGraph = 16;

// For benchmarks and tests: let run() launch the kStepsPerGraph-step graph (the default) or only the one-step graph.
// Read at every run(), by every session. Thread-safe.
void set_multi_step_graphs(bool on);

}  // namespace pinntk
