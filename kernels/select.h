// epsim kernels: per-token expert selection of the CPU router (scores, group-limited top-k).
// Internal to kernels/; the CUDA router implements the same rules on the device.
#ifndef EPSIM_KERNELS_SELECT_H_
#define EPSIM_KERNELS_SELECT_H_

#include <cstdint>
#include <vector>

#include "kernels/ep_ops.h"

namespace epsim {
namespace kernels {

// Throws KernelError naming the bad field when `config` cannot be routed.
void ValidateRouterConfig(const RouterConfig& config);

// One token: logits[E] -> expert[k], weight[k] (ep_ops.h, RouterConfig). `scratch` is reused.
void SelectExperts(const float* logits, const float* bias, const RouterConfig& config,
                   int32_t* expert, float* weight, std::vector<float>& scratch);

}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_KERNELS_SELECT_H_
