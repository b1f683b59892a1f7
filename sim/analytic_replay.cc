// epsim: analytic step replay (see analytic_replay.h).
#include "sim/analytic_replay.h"

#include <algorithm>

#include "sim/fluid.h"

namespace epsim {
namespace {

struct ExchangeResult {
  std::vector<double> done;  // per GPU: when it may leave the phase
  std::vector<double> flow_start, flow_end;
  std::vector<double> busy_s, sent_bytes, recv_bytes;
};

// One all-to-all: flow g -> h starts when both have entered (enter[g], enter[h]); a GPU
// leaves when all of its flows have arrived.
ExchangeResult Exchange(const FabricLayout& layout, const std::vector<double>& capacity,
                        const std::vector<Flow>& flows, const std::vector<double>& enter) {
  const int p = layout.num_gpus();
  std::vector<FluidFlow> fluid(flows.size());
  for (size_t i = 0; i < flows.size(); ++i) {
    const Flow& f = flows[i];
    fluid[i].bytes = f.bytes;
    fluid[i].start_s = std::max(enter[f.src], enter[f.dst]);
    fluid[i].latency_s = layout.RouteLatencyS(f.src, f.dst, f.via_fabric);
    fluid[i].links = layout.RouteLinks(f.src, f.dst, f.via_fabric);
  }
  std::vector<double> arrival = ProcessorSharingCompletions(fluid, capacity);
  ExchangeResult r;
  r.flow_start.resize(flows.size());
  for (size_t i = 0; i < flows.size(); ++i) r.flow_start[i] = fluid[i].start_s;
  r.flow_end = arrival;
  r.done = enter;
  r.busy_s.assign(p, 0);
  r.sent_bytes.assign(p, 0);
  r.recv_bytes.assign(p, 0);
  std::vector<std::vector<std::pair<double, double>>> spans(p);
  for (size_t i = 0; i < flows.size(); ++i) {
    const Flow& f = flows[i];
    for (int g : {f.src, f.dst}) {
      r.done[g] = std::max(r.done[g], arrival[i]);
      spans[g].emplace_back(fluid[i].start_s, arrival[i]);
    }
    r.sent_bytes[f.src] += f.bytes;
    r.recv_bytes[f.dst] += f.bytes;
  }
  for (int g = 0; g < p; ++g) {
    std::sort(spans[g].begin(), spans[g].end());
    double open_start = 0, open_end = -1;
    for (const auto& [start, end] : spans[g]) {
      if (start > open_end) {
        if (open_end > open_start) r.busy_s[g] += open_end - open_start;
        open_start = start;
        open_end = end;
      } else {
        open_end = std::max(open_end, end);
      }
    }
    if (open_end > open_start) r.busy_s[g] += open_end - open_start;
  }
  return r;
}

}  // namespace

StepTimeline AnalyticReplayStep(const FabricLayout& layout, const StepWork& work) {
  const int p = layout.num_gpus();
  const std::vector<double> capacity = layout.LinkCapacities();
  StepTimeline t;
  t.gpus.resize(p);
  std::vector<double> enter(p);
  for (int g = 0; g < p; ++g) enter[g] = t.gpus[g].route_end = work.route_s[g];
  ExchangeResult dispatch = Exchange(layout, capacity, work.dispatch, enter);
  for (int g = 0; g < p; ++g) {
    t.gpus[g].dispatch_end = dispatch.done[g];
    enter[g] = t.gpus[g].expert_end = dispatch.done[g] + work.expert_s[g];
  }
  ExchangeResult combine = Exchange(layout, capacity, work.combine, enter);
  for (int g = 0; g < p; ++g) {
    GpuTimeline& gpu = t.gpus[g];
    gpu.combine_end = combine.done[g];
    gpu.end = combine.done[g] + work.reduce_s[g];
    gpu.dispatch_comm_s = dispatch.busy_s[g];
    gpu.combine_comm_s = combine.busy_s[g];
    gpu.dispatch_sent_bytes = dispatch.sent_bytes[g];
    gpu.dispatch_recv_bytes = dispatch.recv_bytes[g];
    gpu.combine_sent_bytes = combine.sent_bytes[g];
    gpu.combine_recv_bytes = combine.recv_bytes[g];
    t.step_time_s = std::max(t.step_time_s, gpu.end);
  }
  t.dispatch_flow_start = std::move(dispatch.flow_start);
  t.dispatch_flow_end = std::move(dispatch.flow_end);
  t.combine_flow_start = std::move(combine.flow_start);
  t.combine_flow_end = std::move(combine.flow_end);
  return t;
}

}  // namespace epsim
