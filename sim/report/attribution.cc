// epsim report: time attribution (see attribution.h).
#include "sim/report/attribution.h"

#include <algorithm>
#include <map>
#include <utility>

namespace epsim {
namespace {

// Each GPU's flows (indices into `flows`, as sender or receiver), so that attributing
// a GPU's time reads only its own flows.
std::vector<std::vector<int>> FlowsByGpu(const std::vector<Flow>& flows, int num_gpus) {
  std::vector<std::vector<int>> own(num_gpus);
  for (int f = 0; f < static_cast<int>(flows.size()); ++f) {
    own[flows[f].src].push_back(f);
    own[flows[f].dst].push_back(f);
  }
  return own;
}

// The link of `flow` that is GPU g's own port: its send port or its receive port.
int OwnPort(const FabricLayout& layout, const Flow& flow, int g) {
  return flow.src == g ? layout.SendPortLink(flow.src, flow.dst, flow.via_fabric)
                       : layout.ReceivePortLink(flow.src, flow.dst, flow.via_fabric);
}

// Length of the union of spans, and of the part of it outside `cover` (both lists of
// [start, end); `cover` sorted and disjoint).
std::pair<double, double> UnionOutside(std::vector<std::pair<double, double>> spans,
                                       const std::vector<std::pair<double, double>>& cover) {
  double total = 0, outside = 0;
  for (const auto& [start, end] : MergedSpans(std::move(spans))) {
    total += end - start;
    double covered = 0;
    for (const auto& [c0, c1] : cover) covered += std::max(0.0, std::min(end, c1) - std::max(start, c0));
    outside += end - start - covered;
  }
  return {total, outside};
}

class Attribution {
 public:
  Attribution(const FabricLayout& layout, const StepWork& work, const StepTimeline& t)
      : layout_(layout), capacity_(layout.LinkCapacities()), work_(work), t_(t),
        dispatch_of_(FlowsByGpu(work.dispatch, layout.num_gpus())),
        combine_of_(FlowsByGpu(work.combine, layout.num_gpus())) {}

  // One micro-batch: each all-to-all from entering it to leaving it.
  TimeLost Sequential(int g) const {
    TimeLost r;
    auto phase = [&](const std::vector<Flow>& flows, const std::vector<int>& mine,
                     const std::vector<double>& start, double enter, double leave) {
      double first_start = leave;
      std::map<int, double> port_bytes;  // g's own port links: bytes through each
      for (int f : mine) {
        first_start = std::min(first_start, start[f]);
        port_bytes[OwnPort(layout_, flows[f], g)] += flows[f].bytes;
      }
      double alone = 0;
      for (const auto& [link, bytes] : port_bytes) alone = std::max(alone, bytes / capacity_[link]);
      const double busy = std::max(0.0, leave - first_start);
      r.wait_peers_s += std::max(0.0, first_start - enter);
      r.exposed_comm_s += std::min(busy, alone);
      r.contention_s += std::max(0.0, busy - alone);
    };
    const GpuTimeline& x = t_.gpus[g];
    phase(work_.dispatch, dispatch_of_[g], t_.dispatch_flow_start, x.route_end, x.dispatch_end);
    phase(work_.combine, combine_of_[g], t_.combine_flow_start, x.expert_end, x.combine_end);
    r.wait_peers_s += std::max(0.0, t_.step_time_s - x.end);  // done; the slowest GPU is not
    return r;
  }

  // Micro-batches: time with own flows in flight and no compute is exposed communication,
  // of which the share its busiest ports alone would need (per all-to-all, pro rata to what
  // is exposed) counts as exposed, the rest as contention; time with neither is waiting.
  TimeLost Overlapped(int g, double compute_s) const {
    TimeLost r;
    std::vector<std::pair<double, double>> compute, flows;
    for (const TaskSpan& task : t_.gpus[g].tasks)
      if (!task.communication) compute.emplace_back(task.start, task.end);
    std::sort(compute.begin(), compute.end());
    double alone = 0;
    auto collect = [&](const std::vector<Flow>& all, const std::vector<int>& mine,
                       const std::vector<double>& start, const std::vector<double>& end) {
      std::vector<std::map<int, double>> port_bytes(work_.micro_batches);
      for (int f : mine) {
        flows.emplace_back(start[f], end[f]);
        port_bytes[all[f].micro_batch][OwnPort(layout_, all[f], g)] += all[f].bytes;
      }
      for (const auto& ports : port_bytes) {
        double busiest = 0;
        for (const auto& [link, bytes] : ports) busiest = std::max(busiest, bytes / capacity_[link]);
        alone += busiest;
      }
    };
    collect(work_.dispatch, dispatch_of_[g], t_.dispatch_flow_start, t_.dispatch_flow_end);
    collect(work_.combine, combine_of_[g], t_.combine_flow_start, t_.combine_flow_end);
    const auto [in_flight, uncovered] = UnionOutside(flows, compute);
    // compute_s is the work's compute; SimGrid's sleeps can end a few ns off it.
    const double exposed = std::clamp(uncovered, 0.0, std::max(0.0, t_.step_time_s - compute_s));
    const double exposed_alone = in_flight > 0 ? std::min(exposed, alone * exposed / in_flight) : 0;
    r.exposed_comm_s += exposed_alone;
    r.contention_s += exposed - exposed_alone;
    r.wait_peers_s += std::max(0.0, t_.step_time_s - compute_s - exposed);
    return r;
  }

 private:
  const FabricLayout& layout_;
  const std::vector<double> capacity_;
  const StepWork& work_;
  const StepTimeline& t_;
  const std::vector<std::vector<int>> dispatch_of_, combine_of_;
};

}  // namespace

std::vector<TimeLost> AttributeTimeLost(const FabricLayout& layout, const StepWork& work,
                                        const StepTimeline& timeline, const std::vector<double>& compute_s) {
  const Attribution attribution(layout, work, timeline);
  std::vector<TimeLost> lost;
  lost.reserve(compute_s.size());
  for (int g = 0; g < static_cast<int>(compute_s.size()); ++g)
    lost.push_back(work.micro_batches > 1 ? attribution.Overlapped(g, compute_s[g]) : attribution.Sequential(g));
  return lost;
}

}  // namespace epsim
