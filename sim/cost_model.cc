// epsim: compute-phase durations (see cost_model.h).
#include "sim/cost_model.h"

#include <cstdio>

namespace epsim {

double CostModel::Time(const std::string& op, double flops, double bytes, double tokens) {
  const OpModel& model = profile_.Op(op);
  if (!model.InRange(tokens) && warned_.insert(op).second) {
    std::fprintf(stderr,
                 "epsim: warning: %s: operation '%s' asked for %.0f tokens, outside the "
                 "profile's validity range [%.0f, %.0f]; extrapolating\n",
                 profile_.file.c_str(), op.c_str(), tokens, model.valid_tokens_min,
                 model.valid_tokens_max);
  }
  return model.TimeS(flops, bytes, tokens);
}

double CostModel::RouteS(int64_t tokens) {
  const double t = static_cast<double>(tokens), h = shape_.hidden, e = shape_.num_experts;
  const double flops = 2 * t * h * e;
  const double bytes = 2 * (t * h + h * e) + 4 * t * e;
  return Time("route", flops, bytes, t);
}

double CostModel::PermuteS(int64_t dispatched_copies) {
  const double bytes = 2.0 * static_cast<double>(dispatched_copies) * shape_.dispatch_token_bytes;
  return Time("permute", 0, bytes, static_cast<double>(dispatched_copies));
}

double CostModel::ExpertS(int64_t tokens) {
  if (tokens <= 0) return 0;
  const double m = static_cast<double>(tokens), h = shape_.hidden, f = shape_.expert_ffn;
  const double flops = 6 * m * h * f;
  const double bytes = 2 * 3 * h * f + 2 * m * (2 * h + 3 * f);
  return Time("expert", flops, bytes, m);
}

double CostModel::CombineS(int64_t returned_copies, int64_t tokens) {
  const double h = shape_.hidden;
  const double bytes = static_cast<double>(returned_copies) * 2 * h + static_cast<double>(tokens) * 2 * h;
  const double flops = 2.0 * static_cast<double>(returned_copies) * h;
  return Time("combine", flops, bytes, static_cast<double>(tokens));
}

}  // namespace epsim
