// epsim: scenario to metrics (see simulation.h).
#include "sim/simulation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <map>
#include <numeric>

#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include "sim/analytic_replay.h"
#include "sim/config.h"
#include "sim/cost_model.h"
#include "sim/data_files.h"
#include "sim/eplb.h"
#include "sim/fabric_layout.h"
#include "sim/platform.h"
#include "sim/replay.h"
#include "sim/routing.h"
#include "sim/traffic.h"

namespace epsim {
namespace {

double Mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  return std::accumulate(values.begin(), values.end(), 0.0) / values.size();
}

double MaxOverMean(const std::vector<double>& values) {
  const double mean = Mean(values);
  if (mean <= 0) return 0;
  return *std::max_element(values.begin(), values.end()) / mean;
}

std::string ScenarioFile(const Scenario& s, const std::string& key) {
  auto it = s.origin.find(key);
  if (it == s.origin.end()) return s.file;
  return it->second[0] == '-' ? "command line (" + it->second + ")" : it->second;
}

// One micro-batch's work from its routing: flows and compute durations.
StepWork WorkFromPlan(const SimulationInputs& in, const RoutingPlan& plan, CostModel& costs) {
  const Scenario& s = in.scenario;
  const double dispatch_bytes = Scenario::TokenBytes(s.dispatch_dtype, s.hidden);
  const double combine_bytes = Scenario::TokenBytes(s.combine_dtype, s.hidden);
  StepWork work;
  const int p = s.gpus;
  work.route_s.assign(p, 0);
  work.expert_s.assign(p, 0);
  work.reduce_s.assign(p, 0);
  for (int g = 0; g < p; ++g) {
    int64_t copies = 0;  // tokens the source gathers into send order
    for (const auto& entry : plan.dispatch_tokens[g]) copies += entry.second;
    work.route_s[g] = costs.RouteS(plan.source_tokens[g]) + costs.PermuteS(copies);
  }
  for (const TokenFlow& f : DispatchFlows(plan, in.topology, s.a2a)) {
    work.dispatch.push_back({f.src, f.dst, f.tokens * dispatch_bytes, f.via_fabric});
    work.combine.push_back({f.dst, f.src, f.tokens * combine_bytes, f.via_fabric});
  }
  // Combine flows grouped by source for a stable order.
  std::stable_sort(work.combine.begin(), work.combine.end(),
                   [](const Flow& a, const Flow& b) { return a.src < b.src; });
  for (int g = 0; g < p; ++g) {
    double expert_s = 0;
    for (const auto& [expert, tokens] : plan.gpu_expert_tokens[g]) expert_s += costs.ExpertS(tokens);
    // Shared experts run on every GPU over its own tokens.
    expert_s += s.shared_experts * costs.ExpertS(plan.source_tokens[g]);
    work.expert_s[g] = expert_s;
    work.reduce_s[g] = costs.CombineS(ReturnedCopies(plan, g, s.a2a), plan.source_tokens[g]);
  }
  return work;
}

// Micro-batch m of two: half of every count of the step's routing (the first takes the odd
// one). The routing and its drops stay those of the whole step, so that a run with overlap
// and one without move the same tokens.
RoutingPlan MicroBatchPlan(const RoutingPlan& plan, int m) {
  auto half = [m](int64_t n) { return m == 0 ? (n + 1) / 2 : n / 2; };
  RoutingPlan out = plan;
  for (int& tokens : out.source_tokens) tokens = static_cast<int>(half(tokens));
  for (auto* rows : {&out.gpu_expert_tokens, &out.dispatch_tokens, &out.dispatch_pairs, &out.node_tokens}) {
    for (auto& row : *rows) {
      for (auto& entry : row) entry.second = half(entry.second);
      row.erase(std::remove_if(row.begin(), row.end(), [](const auto& e) { return e.second == 0; }),
                row.end());
    }
  }
  return out;
}

// Builds one step's work: routing -> flows and compute durations, in two micro-batches
// with strategy.overlap two-batch.
StepWork MakeStepWork(const SimulationInputs& in, const Placement& placement,
                      const RoutingParams& params, CostModel& costs, int step,
                      RoutingPlan& plan_out) {
  plan_out = SampleRouting(params, placement, step);
  if (in.scenario.overlap != "two-batch") return WorkFromPlan(in, plan_out, costs);
  StepWork work;
  work.micro_batches = 2;
  const int p = in.scenario.gpus;
  work.route_s.assign(p, 0);
  work.expert_s.assign(p, 0);
  work.reduce_s.assign(p, 0);
  for (int m = 0; m < 2; ++m) {
    StepWork part = WorkFromPlan(in, MicroBatchPlan(plan_out, m), costs);
    for (Flow& f : part.dispatch) work.dispatch.push_back({f.src, f.dst, f.bytes, f.via_fabric, m});
    for (Flow& f : part.combine) work.combine.push_back({f.src, f.dst, f.bytes, f.via_fabric, m});
    for (int g = 0; g < p; ++g) {
      work.route_s[g] += part.route_s[g];
      work.expert_s[g] += part.expert_s[g];
      work.reduce_s[g] += part.reduce_s[g];
    }
    work.batch_route_s.push_back(std::move(part.route_s));
    work.batch_expert_s.push_back(std::move(part.expert_s));
    work.batch_reduce_s.push_back(std::move(part.reduce_s));
  }
  return work;
}

// Tensor parallelism inside each NVLink domain (strategy.parallelism tp): the tokens of
// the domain are all-gathered, every GPU computes its 1/D slice of every expert over all of
// them, and the partial outputs are reduce-scattered back to the tokens' GPUs.
StepWork MakeTpStepWork(const SimulationInputs& in, const Placement& placement,
                        const RoutingParams& params, CostModel& sliced_costs, CostModel& costs,
                        int step, RoutingPlan& plan_out) {
  const Scenario& s = in.scenario;
  plan_out = SampleRouting(params, placement, step);
  const RoutingPlan& plan = plan_out;
  const int p = s.gpus;
  const int domain = std::min(in.topology.scale_up.domain_gpus, p);
  const double dispatch_bytes = Scenario::TokenBytes(s.dispatch_dtype, s.hidden);
  const double combine_bytes = Scenario::TokenBytes(s.combine_dtype, s.hidden);
  StepWork work;
  work.route_s.assign(p, 0);
  work.expert_s.assign(p, 0);
  work.reduce_s.assign(p, 0);
  for (int d0 = 0; d0 < p; d0 += domain) {
    int64_t domain_tokens = 0;
    double expert_s = 0;  // every GPU of the domain: its slice of every expert
    for (int g = d0; g < d0 + domain; ++g) {
      domain_tokens += plan.source_tokens[g];
      for (const auto& [expert, tokens] : plan.gpu_expert_tokens[g]) expert_s += sliced_costs.ExpertS(tokens);
    }
    expert_s += s.shared_experts * sliced_costs.ExpertS(domain_tokens);
    for (int g = d0; g < d0 + domain; ++g) {
      work.route_s[g] = costs.RouteS(plan.source_tokens[g]);
      work.expert_s[g] = expert_s;
      work.reduce_s[g] = costs.CombineS(static_cast<int64_t>(domain) * plan.source_tokens[g],
                                        plan.source_tokens[g]);
      for (int h = d0; h < d0 + domain; ++h) {
        if (h == g) continue;
        work.dispatch.push_back({g, h, plan.source_tokens[g] * dispatch_bytes, false});
        work.combine.push_back({g, h, plan.source_tokens[h] * combine_bytes, false});
      }
    }
  }
  return work;
}

// The slowest per-GPU link of the topology (NIC, or NVLink without a fabric).
double LinkFloorBps(const Topology& t) {
  return t.scale_out.nic_bandwidth_Bps > 0 ? t.scale_out.nic_bandwidth_Bps : t.scale_up.bandwidth_Bps;
}

// Step indices of the routing samples that stand for the history before step 0.
constexpr int kHistoryStepBase = 1'000'000'000;

Placement InitialPlacement(const Scenario& s, const Topology& t) {
  if (s.parallelism == "tp")
    return Placement::PerDomain(s.num_experts, s.gpus, std::min(t.scale_up.domain_gpus, s.gpus));
  if (s.placement == "round-robin") return Placement::RoundRobin(s.num_experts, s.gpus);
  return Placement::Contiguous(s.num_experts, s.gpus);  // eplb replaces it before step 0
}

// Bytes of expert weights (gate, up, down in bf16) on the busiest GPU of a placement policy.
double ExpertWeightBytesPerGpu(const Scenario& s, const Topology& t) {
  const double per_expert = 3.0 * s.hidden * s.expert_ffn * 2;
  if (s.parallelism == "tp")
    return (s.num_experts + s.shared_experts) * per_expert / std::min(t.scale_up.domain_gpus, s.gpus);
  const int copies = s.UsesEplb()
                         ? (s.num_experts + s.redundant_experts) / s.gpus
                         : (s.num_experts + s.gpus - 1) / s.gpus;
  return (std::max(copies, 1) + s.shared_experts) * per_expert;
}

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

// GPU g's own dispatch and combine flows.
struct OwnFlows {
  const std::vector<int>& dispatch;
  const std::vector<int>& combine;
};

// Splits GPU g's non-compute time in a step into waiting for peers, exposed communication
// and contention (see GpuStepRecord), from its flows' start and arrival times.
void AttributeWaits(const FabricLayout& layout, const std::vector<double>& capacity,
                    const StepWork& work, const StepTimeline& t, int g, const OwnFlows& own,
                    GpuStepRecord& r) {
  auto phase = [&](const std::vector<Flow>& flows, const std::vector<int>& mine,
                   const std::vector<double>& start, double enter, double leave) {
    double first_start = leave;
    std::map<int, double> port_bytes;  // g's own port links: bytes through each
    for (int f : mine) {
      const Flow& flow = flows[f];
      first_start = std::min(first_start, start[f]);
      const std::array<int, 4> links = layout.RouteLinks(flow.src, flow.dst, flow.via_fabric);
      int last = 0;
      while (last + 1 < 4 && links[last + 1] >= 0) ++last;
      port_bytes[flow.src == g ? links[0] : links[last]] += flow.bytes;
    }
    double alone = 0;
    for (const auto& [link, bytes] : port_bytes) alone = std::max(alone, bytes / capacity[link]);
    const double busy = std::max(0.0, leave - first_start);
    r.wait_peers_s += std::max(0.0, first_start - enter);
    r.exposed_comm_s += std::min(busy, alone);
    r.contention_s += std::max(0.0, busy - alone);
  };
  const GpuTimeline& x = t.gpus[g];
  phase(work.dispatch, own.dispatch, t.dispatch_flow_start, x.route_end, x.dispatch_end);
  phase(work.combine, own.combine, t.combine_flow_start, x.expert_end, x.combine_end);
  r.wait_peers_s += std::max(0.0, t.step_time_s - x.end);  // done; the slowest GPU is not
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

// The same split with micro-batches (step_work.h), where communication runs under compute:
// time with own flows in flight and no compute is exposed communication, of which the
// share its busiest ports alone would need (per all-to-all, pro rata to what is exposed)
// counts as exposed, the rest as contention; time with neither is waiting for peers.
void AttributeOverlappedWaits(const FabricLayout& layout, const std::vector<double>& capacity,
                              const StepWork& work, const StepTimeline& t, int g,
                              const OwnFlows& own, GpuStepRecord& r) {
  std::vector<std::pair<double, double>> compute, flows;
  for (const TaskSpan& task : t.gpus[g].tasks)
    if (!task.communication) compute.emplace_back(task.start, task.end);
  std::sort(compute.begin(), compute.end());
  double alone = 0;
  auto collect = [&](const std::vector<Flow>& all, const std::vector<int>& mine,
                     const std::vector<double>& start, const std::vector<double>& end) {
    std::vector<std::map<int, double>> port_bytes(work.micro_batches);
    for (int f : mine) {
      const Flow& flow = all[f];
      flows.emplace_back(start[f], end[f]);
      const std::array<int, 4> links = layout.RouteLinks(flow.src, flow.dst, flow.via_fabric);
      int last = 0;
      while (last + 1 < 4 && links[last + 1] >= 0) ++last;
      port_bytes[flow.micro_batch][flow.src == g ? links[0] : links[last]] += flow.bytes;
    }
    for (const auto& ports : port_bytes) {
      double busiest = 0;
      for (const auto& [link, bytes] : ports) busiest = std::max(busiest, bytes / capacity[link]);
      alone += busiest;
    }
  };
  collect(work.dispatch, own.dispatch, t.dispatch_flow_start, t.dispatch_flow_end);
  collect(work.combine, own.combine, t.combine_flow_start, t.combine_flow_end);
  const auto [in_flight, uncovered] = UnionOutside(flows, compute);
  // r.compute_s is the work's compute; SimGrid's sleeps can end a few ns off it.
  const double exposed = std::clamp(uncovered, 0.0, std::max(0.0, t.step_time_s - r.compute_s));
  const double exposed_alone = in_flight > 0 ? std::min(exposed, alone * exposed / in_flight) : 0;
  r.exposed_comm_s += exposed_alone;
  r.contention_s += exposed - exposed_alone;
  r.wait_peers_s += std::max(0.0, t.step_time_s - r.compute_s - exposed);
  r.stall_s = r.wait_peers_s;  // neither computing nor moving own data
}

// Memory a run needs, estimated before anything is allocated: flows per all-to-all times
// what one flow costs (measured: about 200 B per flow for the analytic engine at 8192
// GPUs, SimGrid 2-3 KB per flow in flight). A source reaches at most min(P - 1, E, T k)
// GPUs (with replicated experts, one copy per expert).
double EstimatedMemoryBytes(const Scenario& s) {
  const double reach = std::min({static_cast<double>(s.gpus - 1), static_cast<double>(s.num_experts),
                                 static_cast<double>(s.tokens_per_gpu) * s.top_k});
  const double flows = static_cast<double>(s.gpus) * std::max(reach, 1.0);
  const double per_flow = s.engine == "analytic" ? 250.0 : 4000.0;
  return 64e6 + flows * per_flow + 16.0 * s.gpus * s.num_experts;
}

// The limit: $EPSIM_MAX_MEMORY_GB, or 75% of this machine's memory.
double MemoryLimitBytes() {
  if (const char* text = std::getenv("EPSIM_MAX_MEMORY_GB")) {
    char* end = nullptr;
    const double gb = std::strtod(text, &end);
    if (end != text && *end == '\0' && gb > 0) return gb * 1e9;
  }
  return 0.75 * static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
}

constexpr char kAnalyticModel[] =
    "analytic per-link processor sharing (fast path; route latency added per flow)";

}  // namespace

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(q / 100.0 * values.size());
  const size_t index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return values[std::min(index, values.size() - 1)];
}

SimulationInputs ResolveInputs(const Scenario& scenario) {
  SimulationInputs in;
  in.scenario = scenario;
  const std::string topo_path = ResolveDataFile("topologies", scenario.topology,
                                                ScenarioFile(scenario, "topology"), "topology");
  in.topology = LoadTopology(topo_path, scenario.nodes);
  CheckGpusFit(in.topology, scenario.gpus, ScenarioFile(scenario, "workload.gpus"), "workload.gpus");
  std::string profile_ref = scenario.profile.empty() ? in.topology.gpu : scenario.profile;
  in.scenario.profile = profile_ref;
  const std::string profile_path = ResolveDataFile(
      "calibrate/profiles", profile_ref, ScenarioFile(scenario, "profile"), "profile");
  in.profile = LoadProfile(profile_path);
  const int domain = in.topology.scale_up.domain_gpus;
  CheckScenarioOnTopology(scenario, domain);  // eplb-hierarchical: whole domains, experts per domain
  if (scenario.parallelism == "tp" && scenario.gpus > domain && scenario.gpus % domain != 0) {
    throw ConfigError(ScenarioFile(scenario, "strategy.parallelism"), "strategy.parallelism", "tp",
                      "needs whole NVLink domains: workload.gpus must be a multiple of " +
                          std::to_string(domain));
  }
  if (scenario.overlap == "two-batch" && scenario.parallelism == "tp") {
    throw ConfigError(ScenarioFile(scenario, "strategy.overlap"), "strategy.overlap", scenario.overlap,
                      "two-batch overlap is modelled for expert parallelism, not strategy.parallelism tp");
  }
  if (scenario.a2a == "hierarchical" && scenario.gpus > domain && scenario.gpus % domain != 0) {
    throw ConfigError(ScenarioFile(scenario, "strategy.a2a"), "strategy.a2a", scenario.a2a,
                      "needs whole NVLink domains: workload.gpus must be a multiple of " +
                          std::to_string(domain));
  }
  const double need_bytes = EstimatedMemoryBytes(scenario);
  if (need_bytes > MemoryLimitBytes()) {
    char why[240];
    std::snprintf(why, sizeof(why),
                  "this run would need about %.3g GB of memory (limit %.3g GB; raise it with "
                  "EPSIM_MAX_MEMORY_GB%s)",
                  need_bytes / 1e9, MemoryLimitBytes() / 1e9,
                  scenario.engine != "analytic" ? ", or use --engine analytic" : "");
    throw ConfigError(ScenarioFile(scenario, "workload.gpus"), "workload.gpus",
                      std::to_string(scenario.gpus), why);
  }
  const double weight_bytes = ExpertWeightBytesPerGpu(scenario, in.topology);
  if (weight_bytes > in.profile.memory_bytes) {
    char value[40], why[200];
    std::snprintf(value, sizeof(value), "%.3g GB", in.profile.memory_bytes / 1e9);
    std::snprintf(why, sizeof(why),
                  "expert weights need %.3g GB per GPU with %s (model.experts %d, placement %s)",
                  weight_bytes / 1e9, DisplayPath(ScenarioFile(scenario, "model.experts")).c_str(),
                  scenario.num_experts, scenario.placement.c_str());
    throw ConfigError(DisplayPath(in.profile.file), "device.memory", value, why);
  }
  if (scenario.a2a == "rdma-only" && in.topology.scale_out.nics_per_node == 0) {
    throw ConfigError(ScenarioFile(scenario, "strategy.a2a"), "strategy.a2a", scenario.a2a,
                      "topology '" + in.topology.name + "' has no scale_out fabric");
  }
  return in;
}

SimulationResult RunSimulation(const SimulationInputs& in, TraceWriter* trace) {
  const Scenario& s = in.scenario;
  SimulationResult result;
  Placement placement = InitialPlacement(s, in.topology);
  RoutingParams params;
  params.spec = s.routing;
  params.tokens_per_gpu = s.tokens_per_gpu;
  params.token_sigma = s.token_sigma;
  params.balance = s.balance;
  params.top_k = s.top_k;
  params.capacity_factor = s.capacity_factor;
  params.seed = s.seed;
  params.drop_by_score = s.drop_policy == "score";
  params.gpus_per_node = in.topology.scale_up.domain_gpus;  // "node" = NVLink domain
  params.node_limit = s.node_limit;
  params.burst_every = s.burst_every;
  params.burst_share = s.burst_share;

  LayerShape shape;
  shape.hidden = s.hidden;
  shape.expert_ffn = s.expert_ffn;
  shape.num_experts = s.num_experts;
  shape.shared_experts = s.shared_experts;
  shape.top_k = s.top_k;
  shape.dispatch_token_bytes = Scenario::TokenBytes(s.dispatch_dtype, s.hidden);
  shape.combine_token_bytes = Scenario::TokenBytes(s.combine_dtype, s.hidden);
  CostModel costs(in.profile, shape);
  LayerShape sliced_shape = shape;  // one GPU's slice of an expert under tensor parallelism
  const int64_t tp_ways = std::min(in.topology.scale_up.domain_gpus, s.gpus);
  sliced_shape.expert_ffn = (shape.expert_ffn + tp_ways - 1) / tp_ways;
  CostModel sliced_costs(in.profile, sliced_shape);

  RoutingPlan plan;
  const FabricLayout layout(in.topology, s.gpus);
  const std::vector<double> capacity = layout.LinkCapacities();
  // EPLB: the placement for steps [kN, (k+1)N) comes from the routed loads of the N steps
  // before (for k = 0, of N extra samples of the same routing), so plans are always stale.
  std::vector<double> window_load(s.num_experts, 0.0);
  auto make_step = [&](int step) {
    if (s.UsesEplb() && step % s.rebalance_interval == 0) {
      if (step == 0) {
        const Placement base = Placement::Contiguous(s.num_experts, s.gpus);
        params.epoch = 0;  // the history before step 0 has step 0's popularity
        for (int i = 0; i < s.rebalance_interval; ++i) {
          const RoutingPlan history = SampleRouting(params, base, kHistoryStepBase + i);
          for (int e = 0; e < s.num_experts; ++e)
            window_load[e] += static_cast<double>(history.expert_kept[e] + history.expert_dropped[e]);
        }
      }
      // Hierarchical: one group of contiguous experts per NVLink domain, copies kept there.
      placement = s.placement == "eplb-hierarchical"
                      ? HierarchicalReplication(window_load, s.gpus, s.redundant_experts,
                                                std::min(in.topology.scale_up.domain_gpus, s.gpus))
                      : BalancedReplication(window_load, s.gpus, s.redundant_experts);
      std::fill(window_load.begin(), window_load.end(), 0.0);
    }
    params.epoch = s.drift_steps > 0 ? step / s.drift_steps : 0;
    StepWork work = s.parallelism == "tp"
                        ? MakeTpStepWork(in, placement, params, sliced_costs, costs, step, plan)
                        : MakeStepWork(in, placement, params, costs, step, plan);
    for (int e = 0; e < s.num_experts; ++e)
      window_load[e] += static_cast<double>(plan.expert_kept[e] + plan.expert_dropped[e]);
    return work;
  };
  auto on_step = [&](int step, const StepWork& work, const StepTimeline& timeline) {
    if (trace != nullptr) trace->AddStep(step, work, timeline);
    const int p = s.gpus;
    StepRecord rec;
    rec.step = step;
    rec.step_time_s = timeline.step_time_s;
    std::vector<double> stalls, gpu_tokens, dispatch_rates, combine_rates;
    std::vector<int64_t> unique_received(p, 0);
    for (int g = 0; g < p; ++g)
      for (const auto& [dst, tokens] : plan.dispatch_tokens[g]) unique_received[dst] += tokens;
    const std::vector<std::vector<int>> dispatch_of = FlowsByGpu(work.dispatch, p);
    const std::vector<std::vector<int>> combine_of = FlowsByGpu(work.combine, p);
    for (int g = 0; g < p; ++g) {
      const GpuTimeline& t = timeline.gpus[g];
      GpuStepRecord r;
      r.step = step;
      r.gpu = g;
      r.route_s = t.route_end;
      r.dispatch_s = t.dispatch_end - t.route_end;
      r.expert_s = t.expert_end - t.dispatch_end;
      r.combine_s = t.end - t.expert_end;
      r.compute_s = work.route_s[g] + work.expert_s[g] + work.reduce_s[g];
      r.comm_s = t.dispatch_comm_s + t.combine_comm_s;
      r.stall_s = std::max(0.0, timeline.step_time_s - r.compute_s - r.comm_s);
      if (work.micro_batches > 1)
        AttributeOverlappedWaits(layout, capacity, work, timeline, g, {dispatch_of[g], combine_of[g]}, r);
      else
        AttributeWaits(layout, capacity, work, timeline, g, {dispatch_of[g], combine_of[g]}, r);
      r.end_s = t.end;
      r.expert_tokens = plan.ExpertInputTokens(g);
      if (s.parallelism == "tp") {  // every GPU of a domain works on all of the domain's tokens
        const int domain = std::min(in.topology.scale_up.domain_gpus, p);
        int64_t total = 0;
        for (int h = g / domain * domain; h < (g / domain + 1) * domain; ++h) total += plan.ExpertInputTokens(h);
        r.expert_tokens = total / domain;
      }
      r.unique_tokens_received = unique_received[g];
      r.dropped_tokens = plan.source_dropped[g];
      for (const auto& entry : plan.node_tokens[g]) r.node_tokens_sent += entry.second;
      r.dispatch_sent_bytes = t.dispatch_sent_bytes;
      r.dispatch_recv_bytes = t.dispatch_recv_bytes;
      r.combine_sent_bytes = t.combine_sent_bytes;
      r.combine_recv_bytes = t.combine_recv_bytes;
      double dispatch_phase = t.dispatch_end - t.route_end;
      double combine_phase = t.combine_end - t.expert_end;
      if (work.micro_batches > 1) {  // every micro-batch's all-to-all, enter to leave
        dispatch_phase = combine_phase = 0;
        for (const TaskSpan& task : t.tasks) {
          if (!task.communication) continue;
          (std::string(task.name) == "dispatch" ? dispatch_phase : combine_phase) += task.end - task.start;
        }
      }
      r.dispatch_GBps = dispatch_phase > 0 ? t.dispatch_sent_bytes / dispatch_phase / 1e9 : 0;
      r.combine_GBps = combine_phase > 0 ? t.combine_sent_bytes / combine_phase / 1e9 : 0;
      stalls.push_back(r.stall_s);
      gpu_tokens.push_back(static_cast<double>(r.expert_tokens));
      dispatch_rates.push_back(r.dispatch_GBps);
      combine_rates.push_back(r.combine_GBps);
      if (t.end >= timeline.gpus[rec.critical_gpu].end) rec.critical_gpu = g;
      result.gpus.push_back(r);
    }
    const GpuStepRecord& critical = result.gpus[result.gpus.size() - p + rec.critical_gpu];
    rec.route_s = critical.route_s;
    rec.dispatch_s = critical.dispatch_s;
    rec.expert_s = critical.expert_s;
    rec.combine_s = critical.combine_s;
    rec.stall_min_s = *std::min_element(stalls.begin(), stalls.end());
    rec.stall_median_s = Percentile(stalls, 50);
    rec.stall_max_s = *std::max_element(stalls.begin(), stalls.end());
    rec.token_skew = MaxOverMean(gpu_tokens);
    std::vector<double> expert_loads;  // routed load: kept + dropped
    for (int e = 0; e < s.num_experts; ++e)
      expert_loads.push_back(static_cast<double>(plan.expert_kept[e] + plan.expert_dropped[e]));
    rec.expert_skew = MaxOverMean(expert_loads);
    rec.assignments = plan.assignments;
    rec.dropped = plan.dropped;
    rec.dispatch_GBps = Mean(dispatch_rates);
    rec.combine_GBps = Mean(combine_rates);
    result.steps.push_back(rec);
    for (int e = 0; e < s.num_experts; ++e)
      result.experts.push_back({step, e, plan.expert_kept[e], plan.expert_dropped[e]});
  };
  if (s.engine == "analytic") {
    result.network_model = kAnalyticModel;
    for (int step = 0; step < s.steps; ++step) {
      const StepWork work = make_step(step);
      on_step(step, work, AnalyticReplayStep(layout, work));
    }
  } else {
    int argc = 1;
    char name[] = "epsim";
    char* argv[] = {name, nullptr};
    simgrid::s4u::Engine engine(&argc, argv);
    xbt_log_control_set("root.thres:warning");
    // SimGrid completes together the flows whose ends fall within surf/precision seconds
    // (default 10 us). Scale it to the phase: 1e-4 of the time one GPU needs to send all its
    // tokens over one link. On the default scenario this moved the step time by 0.02%
    // against 1e-9 and halved the run.
    const double send_all_s = static_cast<double>(s.tokens_per_gpu) * s.top_k *
                              shape.dispatch_token_bytes / LinkFloorBps(in.topology);
    const double precision_s = std::clamp(1e-4 * send_all_s, 1e-10, 1e-5);
    char precision[32];
    std::snprintf(precision, sizeof(precision), "surf/precision:%.3g", precision_s);
    engine.set_config(precision);
    result.network_model = Platform::ConfigureNetworkModel(engine, s.gpus);
    Platform platform(in.topology, s.gpus);
    ReplaySteps(engine, platform, s.steps, make_step, on_step);
  }

  // Summary over steps.
  Summary& sum = result.summary;
  std::vector<double> times, route, dispatch, expert, combine, token_skew, expert_skew, drate, crate;
  for (const StepRecord& r : result.steps) {
    times.push_back(r.step_time_s);
    route.push_back(r.route_s);
    dispatch.push_back(r.dispatch_s);
    expert.push_back(r.expert_s);
    combine.push_back(r.combine_s);
    token_skew.push_back(r.token_skew);
    expert_skew.push_back(r.expert_skew);
    drate.push_back(r.dispatch_GBps);
    crate.push_back(r.combine_GBps);
    sum.dropped_tokens += r.dropped;
    sum.assignments += r.assignments;
  }
  sum.step_time_s = Mean(times);
  sum.step_time_p50_s = Percentile(times, 50);
  sum.step_time_p99_s = Percentile(times, 99);
  sum.route_s = Mean(route);
  sum.dispatch_s = Mean(dispatch);
  sum.expert_s = Mean(expert);
  sum.combine_s = Mean(combine);
  sum.token_skew = Mean(token_skew);
  sum.expert_skew = Mean(expert_skew);
  sum.dispatch_GBps = Mean(drate);
  sum.combine_GBps = Mean(crate);
  for (const GpuStepRecord& r : result.gpus) {
    sum.wait_peers_s += r.wait_peers_s / result.gpus.size();
    sum.exposed_comm_s += r.exposed_comm_s / result.gpus.size();
    sum.contention_s += r.contention_s / result.gpus.size();
  }
  sum.dropped_fraction =
      sum.assignments > 0 ? static_cast<double>(sum.dropped_tokens) / sum.assignments : 0;
  std::vector<double> gpu_stall(s.gpus, 0.0);
  for (const GpuStepRecord& r : result.gpus) gpu_stall[r.gpu] += r.stall_s / s.steps;
  sum.stall_min_s = *std::min_element(gpu_stall.begin(), gpu_stall.end());
  sum.stall_median_s = Percentile(gpu_stall, 50);
  sum.stall_max_s = *std::max_element(gpu_stall.begin(), gpu_stall.end());
  return result;
}

}  // namespace epsim
