// epsim kernels: naive single-threaded loops with the semantics of ep_ops.h, written
// independently of the optimized CPU code (double accumulation, full sorts, scans per
// expert). Tests and the calibrator check every kernel against these on fresh random data.
#ifndef EPSIM_KERNELS_NAIVE_H_
#define EPSIM_KERNELS_NAIVE_H_

#include <cstdint>
#include <vector>

#include "kernels/ep_ops.h"

namespace epsim {
namespace kernels {
namespace naive {

// logits[T,E] = x . gate^T, accumulated in double.
std::vector<float> GateLogits(const std::vector<float>& x, const std::vector<float>& gate,
                              int64_t num_tokens, int64_t hidden, int num_experts);

// Expert choice from given logits (so tests can separate GEMM rounding from selection).
void Select(const std::vector<float>& logits, const float* bias, int64_t num_tokens,
            const RouterConfig& config, std::vector<int32_t>* topk_expert,
            std::vector<float>* topk_weight);

// Everything DispatchLayout writes, as vectors.
struct Layout {
  std::vector<int32_t> num_tokens_per_expert, num_dropped_per_expert, expert_row_begin;
  std::vector<int32_t> num_copies_per_rank, num_tokens_per_rank, rank_row_begin;
  std::vector<int32_t> slot_to_row, row_to_slot;  // row_to_slot has N entries
};
Layout DispatchLayout(const std::vector<int32_t>& topk_expert,
                      const std::vector<float>& topk_weight,
                      const std::vector<int32_t>& expert_rank, int64_t num_tokens, int top_k,
                      int num_experts, int num_ranks, int64_t capacity, DropPolicy policy);

std::vector<float> Permute(const std::vector<float>& x, const std::vector<int32_t>& row_to_slot,
                           int64_t hidden, int top_k);

std::vector<float> ExpertFfn(const std::vector<float>& input,
                             const std::vector<int32_t>& num_rows,
                             const std::vector<int32_t>& row_begin, int64_t hidden, int64_t ffn,
                             const std::vector<float>& w_gate_up, const std::vector<float>& w_down);

std::vector<float> Combine(const std::vector<float>& expert_out,
                           const std::vector<int32_t>& slot_to_row,
                           const std::vector<float>& topk_weight, int64_t num_tokens, int top_k,
                           int64_t hidden);

// Largest |a - b| / max(|b|, floor) over the elements; `floor` keeps near-zeros sane.
double MaxRelativeError(const std::vector<float>& a, const std::vector<float>& b, double floor);

}  // namespace naive
}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_KERNELS_NAIVE_H_
