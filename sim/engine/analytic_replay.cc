// epsim engine: analytic step replay (see analytic_replay.h).
#include "sim/engine/analytic_replay.h"

#include <algorithm>
#include <tuple>

#include "common/parallel.h"
#include "sim/engine/fluid.h"
#include "sim/engine/max_min.h"

namespace epsim {
namespace {

static_assert(kMaxRouteLinks == std::tuple_size<decltype(FluidFlow::links)>::value, "a route fits a fluid flow");

// One all-to-all call: the flows `members` of `flows`. GPU g is ready once it has entered
// (enter[g]; with a barrier, once every GPU has) and paid its overhead; flow g -> h starts
// when both are ready; a GPU leaves when all of its flows have arrived, or when it is ready
// if it has none. Routes avoid the links that are down. Writes the flows' start and
// arrival times; returns when each GPU leaves.
std::vector<double> Exchange(const FabricLayout& layout, SharingSolver solver, double precision_s,
                             const std::vector<double>& capacity,
                             const std::vector<char>& link_down, const std::vector<Flow>& flows, const std::vector<int>& members,
                             const CallCost& cost, const std::vector<double>& enter,
                             std::vector<double>& flow_start, std::vector<double>& flow_end) {
  const double last_entry = *std::max_element(enter.begin(), enter.end());
  std::vector<double> ready(enter.size());
  for (size_t g = 0; g < enter.size(); ++g)
    ready[g] = (cost.barrier ? last_entry : enter[g]) + cost.OverheadS(static_cast<int>(g));
  // One fluid flow per stripe (a GPU with several NICs splits its fabric flows over the
  // ones that are up), in member order, routed on the worker threads.
  const std::vector<size_t> first_fluid =
      StripeOffsets(layout, members.size(), [&](size_t i) -> const Flow& { return flows[members[i]]; }, link_down);
  std::vector<FluidFlow> fluid(first_fluid.back());
  std::vector<int> member_of(fluid.size());  // fluid flow -> index into members
  ParallelForRanges(members.size(), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const Flow& f = flows[members[i]];
      size_t j = first_fluid[i];
      layout.ForEachStripe(f.src, f.dst, f.via_fabric, &link_down, [&](int s, int used) {
        FluidFlow& part_flow = fluid[j];
        part_flow.bytes = f.bytes / used;
        part_flow.start_s = std::max(ready[f.src], ready[f.dst]);
        part_flow.latency_s = layout.RouteLatencyS(f.src, f.dst, f.via_fabric, s);
        part_flow.links = layout.RouteLinks(f.src, f.dst, f.via_fabric, s, &link_down);
        member_of[j++] = static_cast<int>(i);
      });
    }
  });
  const std::vector<double> arrival = solver == SharingSolver::kMaxMin ? MaxMinCompletions(fluid, capacity, precision_s)
                                                                       : ProcessorSharingCompletions(fluid, capacity);
  std::vector<double> leave = ready;
  for (size_t i = 0; i < members.size(); ++i) flow_end[members[i]] = 0;
  for (size_t j = 0; j < fluid.size(); ++j) {
    const int m = members[member_of[j]];
    const Flow& f = flows[m];
    flow_start[m] = fluid[j].start_s;
    flow_end[m] = std::max(flow_end[m], arrival[j]);  // the flow arrives with its last stripe
    leave[f.src] = std::max(leave[f.src], arrival[j]);
    leave[f.dst] = std::max(leave[f.dst], arrival[j]);
  }
  return leave;
}

}  // namespace

// The two streams of step_work.h, task by task. Each all-to-all is solved on its own: two
// exchanges in flight at once share only fabric-internal links (a GPU's own ports carry
// one exchange at a time, since a flow starts only once both ends are in it), where this
// ignores their mutual slowdown.
StepTimeline AnalyticReplayStep(const FabricLayout& layout, const StepWork& work, SharingSolver solver,
                                double precision_s) {
  const int p = layout.num_gpus();
  const int mbs = work.micro_batches;
  std::vector<double> capacity = layout.LinkCapacities();
  for (const auto& [link, fraction] : work.link_rate) capacity[link] *= fraction;  // faults
  StepTimeline t;
  t.gpus.resize(p);
  t.dispatch_flow_start.assign(work.dispatch.size(), 0);
  t.dispatch_flow_end.assign(work.dispatch.size(), 0);
  t.combine_flow_start.assign(work.combine.size(), 0);
  t.combine_flow_end.assign(work.combine.size(), 0);
  t.moves_flow_start.assign(work.moves.size(), 0);
  t.moves_flow_end.assign(work.moves.size(), 0);
  const std::vector<std::vector<int>> dispatch_of = FlowsByMicroBatch(work.dispatch, mbs);
  const std::vector<std::vector<int>> combine_of = FlowsByMicroBatch(work.combine, mbs);
  std::vector<double> compute_free(p, 0), comm_free(p, 0), enter(p);
  std::vector<std::vector<double>> route_end(mbs), dispatch_leave(mbs), expert_end(mbs), combine_leave(mbs);
  auto task = [&](GpuTimeline& gpu, const char* name, int m, bool comm, double start, double end) {
    if (mbs > 1) gpu.tasks.push_back({name, m, comm, start, end});
  };
  for (int m = 0; m < mbs; ++m) {
    route_end[m].resize(p);
    for (int g = 0; g < p; ++g) {
      const double start = compute_free[g];
      compute_free[g] = route_end[m][g] = start + work.RouteS(m, g);
      task(t.gpus[g], "route", m, false, start, compute_free[g]);
    }
  }
  // The communication stream: all-to-all m of a kind enters after its input is ready.
  auto exchanges = [&](const char* name, const std::vector<Flow>& flows,
                       const std::vector<std::vector<int>>& of, const std::vector<std::vector<double>>& ready,
                       const CallCost& (StepWork::*cost)(int) const, std::vector<double>& flow_start,
                       std::vector<double>& flow_end, std::vector<std::vector<double>>& leave) {
    for (int m = 0; m < mbs; ++m) {
      for (int g = 0; g < p; ++g) enter[g] = std::max(comm_free[g], ready[m][g]);
      leave[m] = Exchange(layout, solver, precision_s, capacity, work.link_down, flows, of[m], (work.*cost)(m), enter, flow_start, flow_end);
      for (int g = 0; g < p; ++g) {
        comm_free[g] = leave[m][g];
        task(t.gpus[g], name, m, true, enter[g], comm_free[g]);
      }
    }
  };
  exchanges("dispatch", work.dispatch, dispatch_of, route_end, &StepWork::DispatchCost, t.dispatch_flow_start,
            t.dispatch_flow_end, dispatch_leave);
  if (!work.moves.empty()) {  // the weights beside the step, next on the communication stream
    std::vector<int> all(work.moves.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    const std::vector<double> leave = Exchange(layout, solver, precision_s, capacity, work.link_down, work.moves, all,
                                               CallCost{}, comm_free, t.moves_flow_start, t.moves_flow_end);
    for (int g = 0; g < p; ++g) {
      task(t.gpus[g], "weights", 0, true, comm_free[g], leave[g]);
      t.gpus[g].moves_end = comm_free[g] = leave[g];
    }
  }
  for (int m = 0; m < mbs; ++m) {
    expert_end[m].resize(p);
    for (int g = 0; g < p; ++g) {
      const double start = std::max(compute_free[g], dispatch_leave[m][g]);
      compute_free[g] = expert_end[m][g] = start + work.ExpertS(m, g);
      task(t.gpus[g], "expert", m, false, start, compute_free[g]);
    }
  }
  exchanges("combine", work.combine, combine_of, expert_end, &StepWork::CombineCost, t.combine_flow_start,
            t.combine_flow_end, combine_leave);
  for (int m = 0; m < mbs; ++m) {
    for (int g = 0; g < p; ++g) {
      const double start = std::max(compute_free[g], combine_leave[m][g]);
      compute_free[g] = start + work.ReduceS(m, g);
      task(t.gpus[g], "reduce", m, false, start, compute_free[g]);
    }
  }
  const int last = mbs - 1;
  for (int g = 0; g < p; ++g) {
    GpuTimeline& gpu = t.gpus[g];
    gpu.route_end = route_end[last][g];
    gpu.dispatch_end = dispatch_leave[last][g];
    gpu.expert_end = expert_end[last][g];
    gpu.combine_end = combine_leave[last][g];
    gpu.end = compute_free[g];
    t.step_time_s = std::max(t.step_time_s, gpu.end);
  }
  FillFlowTotals(work, t);
  return t;
}

}  // namespace epsim
