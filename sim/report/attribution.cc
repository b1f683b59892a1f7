// epsim report: time attribution (see attribution.h).
#include "sim/report/attribution.h"

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "common/parallel.h"

namespace epsim {
namespace {

// Each GPU's flows (indices into `flows`, as sender or receiver), so that attributing
// a GPU's time reads only its own flows.
std::vector<std::vector<int>> FlowsByGpu(const std::vector<Flow>& flows, int num_gpus) {
  std::vector<std::vector<int>> own(num_gpus);
  for (int f = 0; f < static_cast<int>(flows.size()); ++f) {
    own[flows[f].src].push_back(f);
    if (!flows[f].IsSelf()) own[flows[f].dst].push_back(f);
  }
  return own;
}

// Adds `flow`'s bytes to GPU g's own resources it crosses: g's port when g sends or
// receives, and g's sending or receiving SMs when the flow's route goes through them (NVLink
// flows and its own tokens; flows over the NICs do not: fabric_layout.h). A GPU with several
// NICs stripes its fabric flows over the ones that are up (`down`, per link).
void AddOwnBytes(const FabricLayout& layout, const Flow& flow, int g, const std::vector<char>& down,
                 std::map<int, double>& bytes) {
  layout.ForEachStripe(flow.src, flow.dst, flow.via_fabric, &down, [&](int s, int used) {  // each of g's NICs its stripe
    std::array<int, kMaxRouteLinks> route;  // only the SM links are looked up in it
    route.fill(-1);
    if (layout.has_sm_links()) route = layout.RouteLinks(flow.src, flow.dst, flow.via_fabric, s);
    auto on_route = [&](int link) { return link >= 0 && std::find(route.begin(), route.end(), link) != route.end(); };
    for (const int link : {flow.src == g ? layout.SendPortLink(flow.src, flow.dst, flow.via_fabric, s) : -1,
                           flow.src == g && on_route(layout.SmSendLink(g)) ? layout.SmSendLink(g) : -1,
                           flow.dst == g ? layout.ReceivePortLink(flow.src, flow.dst, flow.via_fabric, s) : -1,
                           flow.dst == g && on_route(layout.SmRecvLink(g)) ? layout.SmRecvLink(g) : -1}) {
      if (link >= 0) bytes[link] += flow.bytes / used;
    }
  });
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
        combine_of_(FlowsByGpu(work.combine, layout.num_gpus())), moves_of_(FlowsByGpu(work.moves, layout.num_gpus())) {}

  TimeLost Of(int g, double compute_s) const {
    TimeLost r;
    std::vector<std::pair<double, double>> fixed_spans;
    r.dispatch = Split(g, "dispatch", work_.dispatch, dispatch_of_[g], t_.dispatch_flow_start,
                       &StepWork::DispatchCost, &fixed_spans);
    r.combine = Split(g, "combine", work_.combine, combine_of_[g], t_.combine_flow_start, &StepWork::CombineCost,
                      &fixed_spans);
    if (work_.micro_batches > 1) {
      Overlapped(g, compute_s, fixed_spans, r);
    } else {
      Sequential(g, r);
    }
    return r;
  }

 private:
  // Weights beside the step (an overlapped rebalance) still moving when the GPU's experts
  // were done hold its combine (one micro-batch): exposed as much as its own resources would
  // need for its moves alone, the rest contention; in the call's split, moving data.
  void HeldByMoves(int g, TimeLost& r) const {
    const double held = std::max(0.0, t_.gpus[g].moves_end - t_.gpus[g].expert_end);
    if (held <= 0) return;
    const double alone = std::min(held, AloneS(g, work_.moves, moves_of_[g], -1));
    r.exposed_comm_s += alone;
    r.contention_s += held - alone;
    r.combine.link_s += held;
  }

  // The calls of one kind: per micro-batch, from entering to leaving, its overhead, its own
  // flows in flight, and the rest (waiting). Collects each call's overhead as a span ending
  // where its first flow starts.
  PhaseSplit Split(int g, const char* name, const std::vector<Flow>& flows, const std::vector<int>& mine,
                   const std::vector<double>& start, const CallCost& (StepWork::*cost)(int) const,
                   std::vector<std::pair<double, double>>* fixed_spans) const {
    const GpuTimeline& x = t_.gpus[g];
    const bool dispatch = std::string(name) == "dispatch";
    PhaseSplit split;
    for (int m = 0; m < work_.micro_batches; ++m) {
      // The combine enters once the experts are done and the weight moves beside them left
      // the communication stream (HeldByMoves counts the wait for the moves).
      double enter = dispatch ? x.route_end : std::max(x.expert_end, x.moves_end);
      double leave = dispatch ? x.dispatch_end : x.combine_end;
      for (const TaskSpan& task : x.tasks) {
        if (task.communication && task.micro_batch == m && std::string(task.name) == name) {
          enter = task.start;
          leave = task.end;
        }
      }
      double first_start = leave;
      for (int f : mine) {
        if (flows[f].micro_batch != m) continue;
        first_start = std::min(first_start, start[f]);
      }
      const double overhead = std::min((work_.*cost)(m).OverheadS(g), std::max(0.0, first_start - enter));
      split.fixed_s += overhead;
      split.wait_s += std::max(0.0, first_start - enter - overhead);
      split.link_s += std::max(0.0, leave - first_start);
      if (overhead > 0) fixed_spans->emplace_back(first_start - overhead, first_start);
    }
    return split;
  }

  // The time its own resources need for its own bytes of one call, alone.
  double AloneS(int g, const std::vector<Flow>& flows, const std::vector<int>& mine, int micro_batch) const {
    std::map<int, double> bytes;
    for (int f : mine)
      if (micro_batch < 0 || flows[f].micro_batch == micro_batch) AddOwnBytes(layout_, flows[f], g, work_.link_down, bytes);
    double alone = 0;
    for (const auto& [link, b] : bytes) alone = std::max(alone, b / capacity_[link]);
    return alone;
  }

  // One micro-batch: each call's time splits as PhaseSplit says, its data time into the part
  // its own resources need alone (exposed) and the rest (contention).
  void Sequential(int g, TimeLost& r) const {
    for (const auto& [split, flows, mine] : {std::make_tuple(r.dispatch, &work_.dispatch, &dispatch_of_[g]),
                                             std::make_tuple(r.combine, &work_.combine, &combine_of_[g])}) {
      const double alone = AloneS(g, *flows, *mine, -1);
      r.wait_peers_s += split.wait_s;
      r.fixed_s += split.fixed_s;
      r.exposed_comm_s += std::min(split.link_s, alone);
      r.contention_s += std::max(0.0, split.link_s - alone);
    }
    HeldByMoves(g, r);
    r.wait_peers_s += std::max(0.0, t_.step_time_s - t_.gpus[g].end);  // done; the slowest GPU is not
  }

  // Micro-batches: time with own flows in flight and no compute is exposed communication,
  // of which the share its busiest resources alone would need (per call, pro rata to what is
  // exposed) counts as exposed, the rest as contention; overheads outside compute and flows
  // are fixed cost; time with none of these is waiting.
  void Overlapped(int g, double compute_s, std::vector<std::pair<double, double>> fixed_spans, TimeLost& r) const {
    std::vector<std::pair<double, double>> compute, flows;
    for (const TaskSpan& task : t_.gpus[g].tasks)
      if (!task.communication) compute.emplace_back(task.start, task.end);
    std::sort(compute.begin(), compute.end());
    double alone = 0;
    for (const auto& [all, mine, start, end] :
         {std::make_tuple(&work_.dispatch, &dispatch_of_[g], &t_.dispatch_flow_start, &t_.dispatch_flow_end),
          std::make_tuple(&work_.combine, &combine_of_[g], &t_.combine_flow_start, &t_.combine_flow_end),
          std::make_tuple(&work_.moves, &moves_of_[g], &t_.moves_flow_start, &t_.moves_flow_end)}) {
      for (int f : *mine) flows.emplace_back((*start)[f], (*end)[f]);
      for (int m = 0; m < work_.micro_batches; ++m) alone += AloneS(g, *all, *mine, m);
    }
    const auto [in_flight, uncovered] = UnionOutside(flows, compute);
    // compute_s is the work's compute; SimGrid's sleeps can end a few ns off it.
    const double room = std::max(0.0, t_.step_time_s - compute_s);
    const double exposed = std::clamp(uncovered, 0.0, room);
    fixed_spans.insert(fixed_spans.end(), flows.begin(), flows.end());
    const double with_fixed = UnionOutside(std::move(fixed_spans), compute).second;
    const double fixed = std::clamp(with_fixed - uncovered, 0.0, room - exposed);
    const double exposed_alone = in_flight > 0 ? std::min(exposed, alone * exposed / in_flight) : 0;
    r.exposed_comm_s += exposed_alone;
    r.contention_s += exposed - exposed_alone;
    r.fixed_s += fixed;
    r.wait_peers_s += std::max(0.0, room - exposed - fixed);
  }

  const FabricLayout& layout_;
  const std::vector<double> capacity_;
  const StepWork& work_;
  const StepTimeline& t_;
  const std::vector<std::vector<int>> dispatch_of_, combine_of_, moves_of_;
};

}  // namespace

std::vector<TimeLost> AttributeTimeLost(const FabricLayout& layout, const StepWork& work,
                                        const StepTimeline& timeline, const std::vector<double>& compute_s) {
  const Attribution attribution(layout, work, timeline);
  std::vector<TimeLost> lost(compute_s.size());
  // GPUs are independent: ranges of them on the worker threads.
  ParallelForRanges(lost.size(), [&](size_t begin, size_t end) {
    for (size_t g = begin; g < end; ++g) lost[g] = attribution.Of(static_cast<int>(g), compute_s[g]);
  });
  return lost;
}

}  // namespace epsim
