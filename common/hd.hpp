// HOST_DEVICE: marks the per-point math so one definition builds for the CPU (g++) and the GPU (nvcc).
#pragma once

#if defined(__CUDACC__)
#define PINNTK_HD __host__ __device__
#else
#define PINNTK_HD
#endif
