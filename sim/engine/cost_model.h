// epsim engine: durations of the local (compute) phases of an EP step, from a cost profile.
//
// The work of each operation comes from the layer's shape through the formulas the
// calibrator fits with (calibrate/profile/op_work.h); the profile's model turns work into time.
#ifndef EPSIM_SIM_ENGINE_COST_MODEL_H_
#define EPSIM_SIM_ENGINE_COST_MODEL_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "calibrate/profile/op_work.h"
#include "calibrate/profile/profile.h"

namespace epsim {

struct LayerShape {
  int64_t hidden = 0;
  int64_t expert_ffn = 0;
  int64_t num_experts = 0;
  int64_t shared_experts = 0;
  int64_t top_k = 0;
  double dispatch_token_bytes = 0;
  double combine_token_bytes = 0;
  GemmDtype expert_dtype = GemmDtype::kBf16;
  AttentionShape attention;    // heads 0: no attention costed
  double context = 0;          // tokens each token attends to (op_work.h)
  bool kv_cache = false;       // decode: the context is read from a KV cache
};

class CostModel {
 public:
  CostModel(const Profile& profile, const LayerShape& shape) : profile_(profile), shape_(shape) {}

  double RouteS(int64_t tokens);
  double PermuteS(int64_t dispatched_copies);
  // One GPU's experts over their rows (an expert with 0 rows costs nothing): with the
  // roofline form, one FFN per expert summed; with grouped_gemm, one gate/up and one down
  // launch over all of them (op_work.h).
  double ExpertsS(const std::vector<int64_t>& rows);
  // `count` shared experts over the GPU's `tokens`, in launches of their own.
  double SharedExpertsS(int64_t count, int64_t tokens);
  // Training's backward of the same: the input gradients as their own grouped GEMMs
  // (op_work.h: down's, then gate/up's) and the weight gradients priced as the forward's
  // launches, whose FLOPs they have: twice the forward's FLOPs. (A weight gradient's K is
  // the expert's rows, a shape the profile's kernels were not measured at; at few rows it
  // runs slower than this.) With the roofline form, twice one FFN per expert.
  double ExpertsBackwardS(const std::vector<int64_t>& rows);
  double SharedExpertsBackwardS(int64_t count, int64_t tokens);
  double CombineS(int64_t returned_copies, int64_t tokens);
  // The attention before the layer's router over a GPU's `tokens`: its projections as GEMMs
  // and its core as a roofline, both at the expert operation's rates (the profile's GEMM
  // model); 0 without heads. The backward: twice the projections (input and weight
  // gradients) and 2.5 times the core (FlashAttention's backward: five matrix products of
  // the forward's two, one of them recomputing QK^T).
  double AttentionS(int64_t tokens, bool backward);

  const Profile& profile() const { return profile_; }

 private:
  // The time of `op` for `work`; warns once per operation outside the profile's range.
  double Time(const std::string& op, const OpWork& work);
  void WarnOutsideRange(const std::string& op, const OpModel& model, double tokens);

  const Profile& profile_;
  LayerShape shape_;
  std::set<std::string> warned_;  // operations already warned about (range)
};

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_COST_MODEL_H_
