// epsim profile: the work of each EP-layer operation, in FLOPs and bytes moved through HBM,
// from the layer's shape. What a profile's rates mean: the calibrator divides measured
// times into this work when it fits a profile, and the simulator multiplies it back when it
// predicts a time, so both take the formulas from here and nowhere else.
//
//   route    gate GEMM T x H x E: 2THE FLOPs; reads T*H + H*E bf16, writes T*E fp32 scores
//   layout   (calibrator only) reads expert ids and weights, writes both maps: 16 T k bytes
//   permute  gather of the dispatched copies: reads and writes copies * token_bytes
//   expert   per local expert with M tokens, gate/up M x H x 2F then down M x F x H:
//            6MHF FLOPs; reads the 3HF bf16 weights once, activations 2M(2H + 3F) bytes
//   combine  weighted un-permute and sum: reads returned copies * 2H, writes T * 2H;
//            2 copies H FLOPs
// `tokens` is what a profile's validity range and its small-M term are stated in: tokens
// per GPU (route, layout, combine), dispatched copies (permute), rows of one expert (expert).
//
// The expert layer as grouped GEMMs (the "grouped_gemm" form, profile.h): one launch for
// gate/up (N = 2F, K = H) and one for down (N = H, K = F) over the GPU's experts, each with
// its own rows. A launch reads, per expert with rows: its N x K weights (bf16 2 bytes, or
// fp8 1 byte plus one fp32 scale per 128 x 128 block, DeepSeek-V3's layout), its rows'
// inputs (bf16, or fp8 plus one fp32 scale per 128 elements) and writes bf16 outputs.
#ifndef EPSIM_CALIBRATE_PROFILE_OP_WORK_H_
#define EPSIM_CALIBRATE_PROFILE_OP_WORK_H_

#include <cstdint>
#include <vector>

namespace epsim {

enum class GemmDtype { kBf16, kFp8 };

struct OpWork {
  double flops = 0;
  double bytes = 0;
  double tokens = 0;
};

OpWork RouteWork(double tokens, double hidden, double experts);
OpWork LayoutWork(double tokens, double top_k);
// `token_bytes`: one dispatched token as it is gathered (2H for bf16).
OpWork PermuteWork(double copies, double token_bytes);
OpWork ExpertWork(double rows, double hidden, double ffn);
OpWork CombineWork(double returned_copies, double tokens, double hidden);


// One grouped GEMM launch: every expert of `rows` (its row count; 0: an expert without
// tokens, which costs nothing) multiplies rows x K by its K x N weights.
struct GroupedGemm {
  std::vector<int64_t> rows;
  double n = 0;
  double k = 0;
  GemmDtype dtype = GemmDtype::kBf16;
  // A dense GEMM of a library that splits K over the SMs its tiles leave idle (cuBLAS's and
  // CUTLASS's split-K; the attention's projections, OpModel::GroupedGemmBreakdown), not a
  // grouped expert kernel.
  bool split_k = false;
};
// Useful FLOPs (2 x rows x N x K summed) and bytes through HBM, as the header says.
OpWork GroupedGemmWork(const GroupedGemm& gemm);
// The tiles a kernel with row_tile x col_tile output tiles computes: per expert with rows,
// ceil(rows / row_tile) x ceil(N / col_tile).
double GroupedGemmTiles(const GroupedGemm& gemm, int row_tile, int col_tile);
// The expert layer of one GPU: gate/up then down, for the experts' rows.
GroupedGemm GateUpGemm(const std::vector<int64_t>& rows, double hidden, double ffn, GemmDtype dtype);
GroupedGemm DownGemm(const std::vector<int64_t>& rows, double hidden, double ffn, GemmDtype dtype);
// One expert's weights in `dtype` (gate/up and down, with fp8's block scales), as the
// grouped GEMMs read them: what a rebalance moves per copy.
double ExpertWeightBytes(double hidden, double ffn, GemmDtype dtype);
// The input gradients of the expert layer (training's backward), with the forward's rows:
// down's (rows x H by H x F: N = F, K = H), then gate/up's (rows x 2F by 2F x H: N = H,
// K = 2F). Each has its forward launch's FLOPs; the weight gradients have them too.
GroupedGemm DownInputGradGemm(const std::vector<int64_t>& rows, double hidden, double ffn, GemmDtype dtype);
GroupedGemm GateUpInputGradGemm(const std::vector<int64_t>& rows, double hidden, double ffn, GemmDtype dtype);

// A layer's attention (model.heads) for `tokens` tokens each attending to `context`
// earlier tokens (causal prefill and training: (S + 1) / 2 on average; decode: S), from a
// KV cache (decode: each token its sequence's) or not (prefill, training: K and V the tokens'
// own, FlashAttention streaming them from HBM).
//
// Multi-head and grouped-query (kv_lora_rank 0):
//   projections  Q, K, V: tokens x H by H x (heads + 2 kv_heads) d; output: tokens x heads d
//                by heads d x H (AttentionProjections)
//   core         QK^T and PV: 4 tokens context heads d FLOPs; reads Q, writes O, and reads K
//                and V (kv_heads d each per token)
// Multi-head latent attention (MLA, kv_lora_rank c > 0; DeepSeek-V2 arXiv:2405.04434 2.1,
// DeepSeek-V3 arXiv:2412.19437 2.1.1): keys and values come from one latent of c per token
// (kv down: H -> c + r, r = rope_head_dim, the decoupled RoPE key shared by all heads),
// queries from a latent of q = q_lora_rank (H -> q -> heads (d + r); q 0: H -> heads (d + r)),
// value heads of d.
//   without a cache  K and V up from the latent (c -> heads 2d), then attention with QK^T
//                    over d + r and PV over d: 2 tokens context heads (2d + r) FLOPs;
//                    reads Q, K, V, writes O
//   with a cache     the up projections absorbed into the query and the output (per head
//                    d -> c and c -> d), attention over the cached latents themselves:
//                    2 tokens context heads (2c + r) FLOPs; reads c + r per cached token
//                    once for all heads (the KV cache of MLA), Q and O of c + r and c per head
struct AttentionShape {
  double hidden = 0, heads = 0, kv_heads = 0, head_dim = 0;
  double kv_lora_rank = 0, q_lora_rank = 0, rope_head_dim = 0;  // MLA: kv_lora_rank > 0
  GemmDtype projection_dtype = GemmDtype::kBf16;  // the projections' weights and inputs; the core is bf16
  bool IsLatent() const { return kv_lora_rank > 0; }
};
std::vector<GroupedGemm> AttentionProjections(double tokens, const AttentionShape& shape, bool kv_cache);
OpWork AttentionCoreWork(double tokens, double context, const AttentionShape& shape, bool kv_cache);

}  // namespace epsim

#endif  // EPSIM_CALIBRATE_PROFILE_OP_WORK_H_
