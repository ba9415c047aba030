// What the CUDA backend (host/cuda/cuda_backend.cu) offers beyond host/backend.hpp: knobs of its Adam sessions and of
// its matrix-free products for benchmarks and tests.
#pragma once

namespace pinntk {

// The Adam steps a session's long CUDA graph captures: run(steps) launches it steps / kStepsPerGraph times, then the
// one-step graph for the rest (the same kernels in the same order as one graph launch per step, bit for bit).
constexpr int kStepsPerGraph = 16;

// For benchmarks and tests: let run() launch the kStepsPerGraph-step graph (the default) or only the one-step graph.
// Read at every run(), by every session. Thread-safe.
void set_multi_step_graphs(bool on);

// How jacobian_times and jacobian_transpose_times run: by the tile kernels (a row's whole pass in one block or warp,
// cuda/matvec.cu and the seeded loss-gradient kernel), or a layer at a time over chunks of rows with cuBLAS GEMMs
// between elementwise kernels (cuda/layerwise.hpp). Auto (the default) takes the layers for networks with a layer
// wider than 64, which the tile kernels read from global memory (no compile-time path; their weights do not fit in
// shared memory). chunk_rows > 0 caps the rows of a layer-at-a-time chunk (tests: several chunks on few rows); 0
// takes them from the memory budget. Read when the products' rows are (re)built. Thread-safe.
enum class LayerwiseProducts { kAuto, kOff, kOn };
void set_layerwise_products(LayerwiseProducts mode, int chunk_rows = 0);

}  // namespace pinntk
