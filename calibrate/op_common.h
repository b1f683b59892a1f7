// epsim calibration: helpers shared by the operation files: the simulator's work features
// (calibrate/profile/op_work.h, the formulas both programs use),
// checks that name the mismatch, and device buffers for the CUDA paths (random inputs:
// kernels/random_data.h; layout vectors, bf16 vectors and the bf16 error measure:
// kernels/host_data.h; both shared with the kernel tests).
//
// Work is counted in bf16 activations (2 bytes), as the simulator does, on both backends:
// the CPU reference computes in fp32, so a CPU profile's rates are per bf16-equivalent byte
// and FLOP of the simulator's model, and its times are the CPU's real times.
#ifndef EPSIM_CALIBRATE_OP_COMMON_H_
#define EPSIM_CALIBRATE_OP_COMMON_H_

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "calibrate/fit.h"
#include "calibrate/harness.h"
#include "calibrate/profile/op_work.h"
#include "kernels/ep_ops.h"
#include "kernels/host_data.h"
#include "kernels/random_data.h"
#ifdef EPSIM_WITH_CUDA
#include "kernels/ep_ops_cuda.h"
#endif

namespace epsim {
namespace calib {

using kernels::FromBf16;
using kernels::LayoutBuffers;
using kernels::NormalizedMaxError;
using kernels::RandomChoices;
using kernels::RandomVector;
using kernels::ToBf16;

// A measured case's work as a fit point: the formulas the simulator predicts with
// (calibrate/profile/op_work.h), so that fitted rates mean what the simulator assumes.
inline FitPoint Work(const OpWork& work) { return {work.flops, work.bytes, work.tokens, 0}; }

// The dispatch layout of `t` tokens' random top-k choices over `experts` experts placed
// contiguously on `ranks` ranks, dropless: the maps permute and combine move rows by. The
// choices' router weights go to `weight` when given.
inline LayoutBuffers RandomLayout(int64_t t, int top_k, int experts, int ranks, uint32_t seed,
                                  std::vector<float>* weight = nullptr) {
  std::vector<int32_t> expert, rank(experts);
  std::vector<float> weights;
  RandomChoices(t, top_k, experts, seed, &expert, &weights);
  for (int i = 0; i < experts; ++i) rank[i] = kernels::ContiguousExpertRank(i, experts, ranks);
  LayoutBuffers l(t * top_k, experts, ranks);
  kernels::cpu::DispatchLayout(expert.data(), weights.data(), rank.data(), t, top_k, experts, ranks,
                               kernels::kDropless, kernels::DropPolicy::kPosition, l.Out(), kernels::ExecContext{});
  if (weight != nullptr) *weight = std::move(weights);
  return l;
}

// Exact comparison of a kernel's output with its reference; a mismatch is recorded as
// "what: element I is X, expected Y" (the first differing element) or a size mismatch.
template <typename T>
bool CheckEqual(Harness& h, const std::string& op, const std::string& what, const std::vector<T>& got,
                const std::vector<T>& want) {
  std::ostringstream why;
  why.precision(9);
  if (got.size() != want.size()) {
    why << what << ": " << got.size() << " elements, expected " << want.size();
    return h.Check(false, op, why.str());
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i]) continue;
    why << what << ": element " << i << " is " << +got[i] << ", expected " << +want[i];
    return h.Check(false, op, why.str());
  }
  return true;
}

// A measured error within its limit; a miss is recorded as "what: error E, limit L".
inline bool CheckWithin(Harness& h, const std::string& op, const std::string& what, double error, double limit) {
  char why[64];
  std::snprintf(why, sizeof(why), ": error %.3g, limit %.3g", error, limit);
  return h.Check(error < limit, op, what + why);  // NaN errors fail too
}

// The hidden sizes and token counts swept by the memory-bound operations (permute,
// combine) at each level of the harness.
struct MemoryBoundSweep {
  std::vector<int64_t> hiddens;
  std::vector<int64_t> tokens;
};
inline MemoryBoundSweep MemoryBoundShapes(const Harness& h) {
  const bool gpu = h.backend == Backend::kCuda;
  MemoryBoundSweep sweep;
  sweep.hiddens = h.ByLevel<std::vector<int64_t>>(
      {256}, gpu ? std::vector<int64_t>{2048, 7168} : std::vector<int64_t>{1024, 4096},
      std::vector<int64_t>{2048, 4096, 7168});
  sweep.tokens = h.ByLevel<std::vector<int64_t>>(
      {1, 16, 128}, gpu ? std::vector<int64_t>{1, 16, 128, 1024, 4096, 16384} : std::vector<int64_t>{1, 4, 16, 64, 256, 1024, 2048},
      gpu ? std::vector<int64_t>{1, 4, 16, 64, 256, 1024, 4096, 16384} : std::vector<int64_t>{1, 4, 16, 64, 256, 1024, 4096});
  return sweep;
}

#ifdef EPSIM_WITH_CUDA
// Owns device memory; freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : ptr_(kernels::cuda::Malloc(bytes)), bytes_(bytes) {}
  template <typename T>
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size() * sizeof(T)) {
    kernels::cuda::CopyToDevice(ptr_, host.data(), bytes_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceBuffer() { if (ptr_) kernels::cuda::Free(ptr_); }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  template <typename T>
  std::vector<T> Download(size_t n) const {
    std::vector<T> host(n);
    kernels::cuda::CopyToHost(host.data(), ptr_, n * sizeof(T));
    return host;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Device copies of every layout output array.
struct LayoutDevice {
  DeviceBuffer per_expert, dropped, expert_begin, copies_per_rank, tokens_per_rank, rank_begin,
      slot_to_row, row_to_slot, workspace;
  LayoutDevice(int64_t slots, int experts, int ranks)
      : per_expert(4 * experts), dropped(4 * experts), expert_begin(4 * experts),
        copies_per_rank(4 * ranks), tokens_per_rank(4 * ranks), rank_begin(4 * (ranks + 1)),
        slot_to_row(4 * std::max<int64_t>(slots, 1)), row_to_slot(4 * std::max<int64_t>(slots, 1)),
        workspace(kernels::cuda::LayoutWorkspaceBytes(slots, experts, ranks)) {}
  kernels::LayoutOut Out() const {
    return {per_expert.as<int32_t>(),      dropped.as<int32_t>(),
            expert_begin.as<int32_t>(),    copies_per_rank.as<int32_t>(),
            tokens_per_rank.as<int32_t>(), rank_begin.as<int32_t>(),
            slot_to_row.as<int32_t>(),     row_to_slot.as<int32_t>()};
  }
};
#endif

}  // namespace calib
}  // namespace epsim

#endif  // EPSIM_CALIBRATE_OP_COMMON_H_
