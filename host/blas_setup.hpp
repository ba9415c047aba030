// The run-time environment of the CPU libraries, fixed once at start-up (both read it when they load, before
// main, so the program re-executes itself once with it set):
// - OpenBLAS chooses its kernels from the CPU model number. On models it does not know (new CPUs, and virtual
//   machines that report a generic model) Debian's OpenBLAS falls back to Prescott-era SSE3 kernels, 3 to 5 times
//   slower than the AVX2 or AVX-512 ones the CPU supports: OPENBLAS_CORETYPE chooses them.
// - libgomp's idle threads spin for a long while after a parallel region (GOMP_SPINCOUNT 300000 by default) and
//   compete for the cores with OpenBLAS's threads, which run the products between the regions (Levenberg-Marquardt,
//   the NTK): GOMP_SPINCOUNT 10000 let a 2-core LM run go 4x faster (2.4 s -> 0.6 s for 200 iterations of the 2-D
//   Poisson benchmark) with the Adam step unchanged within noise.
#pragma once

namespace pinntk {

// Call first thing in main(). Returns normally when nothing needs changing (PINNTK_NO_REEXEC set, or the
// variables already set by the user or needing no change); otherwise does not return (execv succeeded).
void ensure_fast_openblas_kernels(char** argv);

}  // namespace pinntk
