// epsim: durations of the local (compute) phases of an EP step, from a cost profile.
//
// The work of each operation, in FLOPs and bytes moved through HBM, is computed here from
// the layer's shape; the profile turns work into time. Formulas (bf16 = 2 bytes):
//   route   gate GEMM T x H x E: 2THE FLOPs; reads T*H + H*E bf16, writes T*E fp32 scores
//   permute gather of the dispatched copies: reads and writes copies * token_bytes
//   expert  per local expert with M tokens, gate/up M x H x 2F then down M x F x H:
//           6MHF FLOPs; reads the 3HF bf16 weights once, activations 2M(2H + 3F) bytes
//   combine weighted un-permute and sum: reads returned copies * 2H, writes T * 2H
#ifndef EPSIM_SIM_COST_MODEL_H_
#define EPSIM_SIM_COST_MODEL_H_

#include <cstdint>
#include <set>
#include <string>

#include "calibrate/profile.h"

namespace epsim {

struct LayerShape {
  int64_t hidden = 0;
  int64_t expert_ffn = 0;
  int64_t num_experts = 0;
  int64_t shared_experts = 0;
  int64_t top_k = 0;
  double dispatch_token_bytes = 0;
  double combine_token_bytes = 0;
};

class CostModel {
 public:
  CostModel(const Profile& profile, const LayerShape& shape) : profile_(profile), shape_(shape) {}

  double RouteS(int64_t tokens);
  double PermuteS(int64_t dispatched_copies);
  // One expert's FFN over `tokens` tokens (0 tokens: no work, no time).
  double ExpertS(int64_t tokens);
  double CombineS(int64_t returned_copies, int64_t tokens);

  const Profile& profile() const { return profile_; }

 private:
  double Time(const std::string& op, double flops, double bytes, double tokens);

  const Profile& profile_;
  LayerShape shape_;
  std::set<std::string> warned_;  // operations already warned about (range)
};

}  // namespace epsim

#endif  // EPSIM_SIM_COST_MODEL_H_
