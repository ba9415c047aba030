// The CUDA backend's Levenberg-Marquardt session: J, the residuals, the Gram and its Cholesky factor stay on the
// device (cuBLAS syrk and gemv, cuSOLVER potrf/potrs); per iteration mu goes down and four scalars come back.
#pragma once

#include <memory>  // std::unique_ptr, std::shared_ptr

#include "host/backend.hpp"  // LmSession
#include "host/mlp.hpp"      // Mlp
#include "host/problem.hpp"  // PointSet

namespace pinntk::cudaimpl {

class CudaContext;

// The session shares the backend's context (stream, pool, handles) and keeps it alive.
template <class Real>
std::unique_ptr<LmSession> make_cuda_lm_session(std::shared_ptr<const CudaContext> ctx, const Mlp& net,
                                                const PointSet& pts, bool sample_form);

}  // namespace pinntk::cudaimpl
