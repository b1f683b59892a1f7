// epsim kernels: error checks for CUDA, cuBLAS and NCCL calls that throw KernelError with the
// file, the line, the call and the library's message (as NCCL's and DeepEP's CUDA_CHECK).
// Include only from .cu files.
#ifndef EPSIM_KERNELS_CUDA_CHECK_H_
#define EPSIM_KERNELS_CUDA_CHECK_H_

#include <cuda_runtime.h>

#include <string>

#include "kernels/ep_ops.h"

#define EPSIM_FAIL_AT(call, message)                                                      \
  throw ::epsim::kernels::KernelError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                      ": " + (call) + ": " + (message))

#define CUDA_CHECK(call)                                                \
  do {                                                                  \
    const cudaError_t cuda_rc_ = (call);                                \
    if (cuda_rc_ != cudaSuccess) EPSIM_FAIL_AT(#call, cudaGetErrorString(cuda_rc_)); \
  } while (0)

// cuBLAS status codes as numbers (cublasGetStatusString is itself loaded at run time).
#define CUBLAS_CHECK(call)                                                            \
  do {                                                                                \
    const int cublas_rc_ = static_cast<int>(call);                                    \
    if (cublas_rc_ != 0) EPSIM_FAIL_AT(#call, "cublasStatus " + std::to_string(cublas_rc_)); \
  } while (0)

#define NCCL_CHECK(call)                                                              \
  do {                                                                                \
    const int nccl_rc_ = static_cast<int>(call);                                      \
    if (nccl_rc_ != 0) EPSIM_FAIL_AT(#call, ::epsim::kernels::NcclErrorString(nccl_rc_)); \
  } while (0)

namespace epsim {
namespace kernels {
// ncclGetErrorString through the loaded library, or the number when it is not loaded.
std::string NcclErrorString(int result);
}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_KERNELS_CUDA_CHECK_H_
