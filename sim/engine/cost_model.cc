// epsim engine: compute-phase durations (see cost_model.h).
#include "sim/engine/cost_model.h"

#include <algorithm>
#include <cstdio>

namespace epsim {

void CostModel::WarnOutsideRange(const std::string& op, const OpModel& model, double tokens) {
  if (model.InRange(tokens) || !warned_.insert(op).second) return;
  std::fprintf(stderr,
               "epsim: warning: %s: operation '%s' asked for %.0f tokens, outside the "
               "profile's validity range [%.0f, %.0f]; extrapolating\n",
               profile_.file.c_str(), op.c_str(), tokens, model.valid_tokens_min, model.valid_tokens_max);
}

double CostModel::Time(const std::string& op, const OpWork& work) {
  const OpModel& model = profile_.Op(op);
  WarnOutsideRange(op, model, work.tokens);
  return model.TimeS(work.flops, work.bytes, work.tokens);
}

double CostModel::RouteS(int64_t tokens) {
  return Time("route", RouteWork(static_cast<double>(tokens), shape_.hidden, shape_.num_experts));
}

double CostModel::PermuteS(int64_t dispatched_copies) {
  return Time("permute", PermuteWork(static_cast<double>(dispatched_copies), shape_.dispatch_token_bytes));
}

double CostModel::ExpertsS(const std::vector<int64_t>& rows) {
  const OpModel& model = profile_.Op("expert");
  if (!model.IsGroupedGemm()) {
    double total = 0;
    for (const int64_t m : rows)
      if (m > 0) total += Time("expert", ExpertWork(static_cast<double>(m), shape_.hidden, shape_.expert_ffn));
    return total;
  }
  for (const int64_t m : rows)
    if (m > 0) WarnOutsideRange("expert", model, static_cast<double>(m));
  const double h = static_cast<double>(shape_.hidden), f = static_cast<double>(shape_.expert_ffn);
  return model.GroupedGemmS(GateUpGemm(rows, h, f, shape_.expert_dtype)) +
         model.GroupedGemmS(DownGemm(rows, h, f, shape_.expert_dtype));
}

double CostModel::SharedExpertsS(int64_t count, int64_t tokens) {
  if (count <= 0 || tokens <= 0) return 0;
  return ExpertsS(std::vector<int64_t>(static_cast<size_t>(count), tokens));
}

double CostModel::ExpertsBackwardS(const std::vector<int64_t>& rows) {
  const OpModel& model = profile_.Op("expert");
  if (!model.IsGroupedGemm()) return 2 * ExpertsS(rows);
  const double h = static_cast<double>(shape_.hidden), f = static_cast<double>(shape_.expert_ffn);
  return model.GroupedGemmS(DownInputGradGemm(rows, h, f, shape_.expert_dtype)) +
         model.GroupedGemmS(GateUpInputGradGemm(rows, h, f, shape_.expert_dtype)) + ExpertsS(rows);
}

double CostModel::SharedExpertsBackwardS(int64_t count, int64_t tokens) {
  if (count <= 0 || tokens <= 0) return 0;
  return ExpertsBackwardS(std::vector<int64_t>(static_cast<size_t>(count), tokens));
}

double CostModel::AttentionS(int64_t tokens, bool backward) {
  const AttentionShape& a = shape_.attention;
  if (a.heads <= 0 || tokens <= 0) return 0;
  const OpModel& model = profile_.Op("expert");
  double projections = 0;
  for (const GroupedGemm& gemm : AttentionProjections(static_cast<double>(tokens), a, shape_.kv_cache)) {
    const OpWork w = GroupedGemmWork(gemm);
    projections += model.IsGroupedGemm() ? model.GroupedGemmS(gemm) : model.TimeS(w.flops, w.bytes, w.tokens);
  }
  const OpWork core = AttentionCoreWork(static_cast<double>(tokens), shape_.context, a, shape_.kv_cache);
  double core_s = 0;
  if (model.IsGroupedGemm()) {
    const double rate = model.gemm.PeakFps(GemmDtype::kBf16) * model.gemm.Efficiency(GemmDtype::kBf16);
    core_s = model.fixed_s + std::max(core.flops / rate, model.mem_rate_Bps > 0 ? core.bytes / model.mem_rate_Bps : 0.0);
  } else {
    core_s = model.TimeS(core.flops, core.bytes, core.tokens);
  }
  return backward ? 2 * projections + 2.5 * core_s : projections + core_s;
}

double CostModel::CombineS(int64_t returned_copies, int64_t tokens) {
  return Time("combine", CombineWork(static_cast<double>(returned_copies), static_cast<double>(tokens),
                                     shape_.hidden));
}

}  // namespace epsim
