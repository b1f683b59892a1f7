// epsim engine: per-GPU totals of a replayed step (see step_work.h).
#include "sim/engine/step_work.h"

#include <algorithm>
#include <string>
#include <utility>

namespace epsim {

std::string SlotName(Pass pass, const std::string& slot) {
  if (pass == Pass::kForward) return slot;
  if (pass == Pass::kRebalance) return slot == "dispatch" ? "expert weights" : slot;
  static const char* const kMirror[][2] = {
      {"route", "reduce"}, {"dispatch", "combine"}, {"expert", "expert"}, {"combine", "dispatch"}, {"reduce", "route"}};
  for (const auto& [from, to] : kMirror)
    if (slot == from) return std::string(to) + " grad";
  return slot + " grad";
}

std::vector<std::vector<int>> FlowsByMicroBatch(const std::vector<Flow>& flows, int micro_batches) {
  std::vector<std::vector<int>> members(micro_batches);
  for (int f = 0; f < static_cast<int>(flows.size()); ++f) members[flows[f].micro_batch].push_back(f);
  return members;
}

std::vector<std::pair<double, double>> MergedSpans(std::vector<std::pair<double, double>> spans) {
  std::sort(spans.begin(), spans.end());
  std::vector<std::pair<double, double>> merged;
  for (const auto& span : spans) {
    if (!merged.empty() && span.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, span.second);
    else
      merged.push_back(span);
  }
  return merged;
}

void FillFlowTotals(const StepWork& work, StepTimeline& t) {
  const size_t p = t.gpus.size();
  auto totals = [&](const std::vector<Flow>& flows, const std::vector<double>& start,
                    const std::vector<double>& end, double GpuTimeline::*busy,
                    double GpuTimeline::*sent, double GpuTimeline::*received) {
    std::vector<std::vector<std::pair<double, double>>> spans(p);
    for (size_t f = 0; f < flows.size(); ++f) {
      const Flow& flow = flows[f];
      spans[flow.src].emplace_back(start[f], end[f]);
      if (flow.IsSelf()) continue;  // a GPU's own tokens are neither sent nor received
      spans[flow.dst].emplace_back(start[f], end[f]);
      t.gpus[flow.src].*sent += flow.bytes;
      t.gpus[flow.dst].*received += flow.bytes;
    }
    for (size_t g = 0; g < p; ++g) {
      double length = 0;
      for (const auto& [start, end] : MergedSpans(std::move(spans[g]))) length += end - start;
      t.gpus[g].*busy = length;
    }
  };
  totals(work.dispatch, t.dispatch_flow_start, t.dispatch_flow_end, &GpuTimeline::dispatch_comm_s,
         &GpuTimeline::dispatch_sent_bytes, &GpuTimeline::dispatch_recv_bytes);
  totals(work.combine, t.combine_flow_start, t.combine_flow_end, &GpuTimeline::combine_comm_s,
         &GpuTimeline::combine_sent_bytes, &GpuTimeline::combine_recv_bytes);
}

}  // namespace epsim
