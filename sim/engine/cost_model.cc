// epsim engine: compute-phase durations (see cost_model.h).
#include "sim/engine/cost_model.h"

#include <cstdio>

namespace epsim {

double CostModel::Time(const std::string& op, const OpWork& work) {
  const OpModel& model = profile_.Op(op);
  if (!model.InRange(work.tokens) && warned_.insert(op).second) {
    std::fprintf(stderr,
                 "epsim: warning: %s: operation '%s' asked for %.0f tokens, outside the "
                 "profile's validity range [%.0f, %.0f]; extrapolating\n",
                 profile_.file.c_str(), op.c_str(), work.tokens, model.valid_tokens_min,
                 model.valid_tokens_max);
  }
  return model.TimeS(work.flops, work.bytes, work.tokens);
}

double CostModel::RouteS(int64_t tokens) {
  return Time("route", RouteWork(static_cast<double>(tokens), shape_.hidden, shape_.num_experts));
}

double CostModel::PermuteS(int64_t dispatched_copies) {
  return Time("permute", PermuteWork(static_cast<double>(dispatched_copies), shape_.dispatch_token_bytes));
}

double CostModel::ExpertS(int64_t tokens) {
  if (tokens <= 0) return 0;
  return Time("expert", ExpertWork(static_cast<double>(tokens), shape_.hidden, shape_.expert_ffn));
}

double CostModel::CombineS(int64_t returned_copies, int64_t tokens) {
  return Time("combine", CombineWork(static_cast<double>(returned_copies), static_cast<double>(tokens),
                                     shape_.hidden));
}

}  // namespace epsim
