// epsim kernels: the operations of one expert-parallel (EP) MoE layer, declared once.
//
// Two implementations with the same semantics sit behind these declarations:
//   epsim::kernels::cpu   reference, fp32, Eigen GEMMs, std::thread over tokens/experts
//                         (ep_ops_cpu.cc; always built);
//   epsim::kernels::cuda  bf16 storage with fp32 accumulation, cuBLAS GEMMs
//                         (ep_ops_cuda.cu; built only when nvcc exists, see ep_ops_cuda.h).
// Launchers take pointers and counts first and the execution context last (as DeepEP's
// csrc/kernels/api.cuh takes the stream last). All matrices are row-major.
//
// The step, in order (design.md, "The EP step being modelled"):
//   Route          x[T,H] . gate[E,H]^T -> scores -> top-k experts and weights per token
//   DispatchLayout top-k -> counts per expert / destination rank, prefix sums, permutation,
//                  capacity drops
//   Permute        gather x rows into destination-rank, expert-contiguous order
//   ExpertFfn      grouped GEMM over uneven counts: gate/up, SwiGLU, down
//   Combine        weighted un-permute and sum back to [T,H]
// The all-to-all between Permute and ExpertFfn (and after it) is in all_to_all.h.
#ifndef EPSIM_KERNELS_EP_OPS_H_
#define EPSIM_KERNELS_EP_OPS_H_

#include <cstdint>
#include <stdexcept>
#include <string>

namespace epsim {
namespace kernels {

// A bad argument or a failed device call; what() names the operation and the value.
class KernelError : public std::runtime_error {
 public:
  explicit KernelError(const std::string& what) : std::runtime_error(what) {}
};

// How router scores are turned into choices.
enum class ScoreFunc {
  kSoftmax,  // probabilities = softmax(logits); group score = max in the group
  kSigmoid,  // scores = sigmoid(logits) (+ bias for selection only); group score = sum of
             // the group's top-2 scores (DeepSeek-V3)
};

// Router settings. Experts are split into `num_groups` equal groups; each token first keeps
// its best `topk_groups` groups, then takes its `top_k` best experts from those (distinct).
// Ties go to the lower expert (and lower group) index, so results are deterministic.
struct RouterConfig {
  int num_experts = 0;
  int top_k = 0;
  int num_groups = 1;
  int topk_groups = 1;
  ScoreFunc score_func = ScoreFunc::kSoftmax;
  bool normalize_weights = true;  // weights of a token's k choices divided by their sum
  float weight_scale = 1.0f;      // applied after normalizing (DeepSeek-V3 routed scaling)
};

// Which of an expert's tokens are kept when more than `capacity` arrive.
enum class DropPolicy {
  kPosition,  // the first `capacity` tokens in token order (Megatron "position")
  kScore,     // the `capacity` tokens with the highest routing weight, ties by token index
              // (Megatron "probs")
};

// Capacity: tokens kept per expert; kDropless keeps all. 0 drops every token.
constexpr int64_t kDropless = -1;

// Results of DispatchLayout, arrays owned by the caller. N = kept (token, expert) copies.
// Rows of the permuted buffer are ordered by destination rank, then expert, then token.
struct LayoutOut {
  int32_t* num_tokens_per_expert = nullptr;  // [E] kept copies per expert
  int32_t* num_dropped_per_expert = nullptr; // [E] copies over capacity
  int32_t* expert_row_begin = nullptr;       // [E] first row of each expert
  int32_t* num_copies_per_rank = nullptr;    // [P] rows sent to each rank (one per copy)
  int32_t* num_tokens_per_rank = nullptr;    // [P] distinct tokens sent to each rank
                                             //     (the DeepEP deduplicated count)
  int32_t* rank_row_begin = nullptr;         // [P+1] prefix sums of num_copies_per_rank
  int32_t* slot_to_row = nullptr;            // [T*k] row of slot t*k+j, -1 when dropped
  int32_t* row_to_slot = nullptr;            // [T*k] first N entries: slot of each row
};

// Where a launcher runs. The CPU reference uses `num_threads`; CUDA launchers use
// `cuda_stream` (a cudaStream_t) and `cublas` (a CublasHandle*, see ep_ops_cuda.h).
struct ExecContext {
  int num_threads = 1;
  void* cuda_stream = nullptr;
  void* cublas = nullptr;
};

namespace cpu {

// Gate GEMM logits[T,E] = x[T,H] . gate_weight[E,H]^T, scores, grouped top-k.
// `bias` [E] (may be null) is added to scores for selection only (DeepSeek-V3 balancing).
// `logits` [T,E] is scratch the caller provides. Writes topk_expert[T,k], topk_weight[T,k]
// (choices in descending score order).
void Route(const float* x, const float* gate_weight, const float* bias, int64_t num_tokens,
           int64_t hidden, const RouterConfig& config, float* logits, int32_t* topk_expert,
           float* topk_weight, const ExecContext& ctx);

// Counts, prefix sums and the permutation of the (token, choice) slots. `expert_rank` [E]
// gives the rank that holds each expert (any placement). Returns the kept copies N.
int64_t DispatchLayout(const int32_t* topk_expert, const float* topk_weight,
                       const int32_t* expert_rank, int64_t num_tokens, int top_k,
                       int num_experts, int num_ranks, int64_t capacity, DropPolicy policy,
                       const LayoutOut& out, const ExecContext& ctx);

// permuted[r,:] = x[row_to_slot[r] / top_k, :] for r < num_rows.
void Permute(const float* x, const int32_t* row_to_slot, int64_t num_rows, int64_t hidden,
             int top_k, float* permuted, const ExecContext& ctx);

// For each expert e with rows [row_begin[e], row_begin[e] + num_rows[e]) of `input`:
//   h = input . w_gate_up[e]  (w_gate_up [E, H, 2F]: gate in columns [0,F), up in [F,2F))
//   a = silu(h_gate) * h_up   (SwiGLU)
//   output = a . w_down[e]    (w_down [E, F, H])
// `workspace` holds max rows x 3F floats (rows = sum of num_rows).
void ExpertFfn(const float* input, const int32_t* num_rows, const int32_t* row_begin,
               int num_experts, int64_t hidden, int64_t ffn, const float* w_gate_up,
               const float* w_down, float* output, float* workspace, const ExecContext& ctx);

// out[t,:] = sum_j topk_weight[t,j] * expert_out[slot_to_row[t*k+j], :] over kept slots;
// a token with every slot dropped gets zeros.
void Combine(const float* expert_out, const int32_t* slot_to_row, const float* topk_weight,
             int64_t num_tokens, int top_k, int64_t hidden, float* out, const ExecContext& ctx);

}  // namespace cpu

// Expert e's home rank when E experts are spread contiguously over P ranks, the first
// E % P ranks holding one more (works when E is not a multiple of P).
int ContiguousExpertRank(int expert, int num_experts, int num_ranks);

// bf16 <-> fp32 (round to nearest even), for tests and for moving data to the CUDA backend.
uint16_t FloatToBf16(float value);
float Bf16ToFloat(uint16_t value);

}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_KERNELS_EP_OPS_H_
