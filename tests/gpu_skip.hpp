// The one way a GPU test leaves when no CUDA device answers: skipped (GTEST_SKIP, reported SKIPPED), never failed.
#pragma once

#include <gtest/gtest.h>

#include "host/backend.hpp"  // cuda_device_count

#define SKIP_WITHOUT_GPU() \
  if (::pinntk::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device answers"
