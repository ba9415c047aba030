// OpenBLAS chooses its kernels when it is loaded, from the CPU model number. On models it does not know (new
// CPUs, and virtual machines that report a generic model) Debian's OpenBLAS falls back to Prescott-era SSE3
// kernels, 3 to 5 times slower than the AVX2 or AVX-512 ones the CPU supports. The choice can only be changed
// through OPENBLAS_CORETYPE before the library loads, so the program re-executes itself once with it set.
#pragma once

namespace pinntk {

// Call first thing in main(). Returns normally when nothing needs changing (OPENBLAS_CORETYPE or
// PINNTK_NO_REEXEC already set, a known CPU, or no AVX2); otherwise does not return (execv succeeded).
void ensure_fast_openblas_kernels(char** argv);

}  // namespace pinntk
