// epsim kernels: stand-in for a2a_nccl.cu when the build found no nvcc: NCCL is unavailable.
#include <string>

#include "kernels/all_to_all.h"
#include "kernels/ep_ops.h"

namespace epsim {
namespace kernels {
namespace {
const char kWhy[] = "built without CUDA (no nvcc at build time), so no NCCL all-to-all";
}  // namespace

bool NcclAllToAll::Available(std::string* why) {
  if (why) *why = kWhy;
  return false;
}
std::string NcclAllToAll::Version() { return ""; }
NcclAllToAll::NcclAllToAll(int) { throw KernelError(std::string("a2a (nccl): ") + kWhy); }
NcclAllToAll::~NcclAllToAll() = default;
void NcclAllToAll::AllToAllV(void* const*, const int64_t*, void* const*, const int64_t*,
                             void* const*) {}

}  // namespace kernels
}  // namespace epsim
