// epsim simulation: scenario to records (see simulation.h).
#include "sim/simulation/simulation.h"

#include "sim/engine/engine.h"
#include "sim/engine/step_builder.h"
#include "sim/workload/placement.h"
#include "sim/workload/sampler.h"
#include "sim/workload/step_routing.h"

namespace epsim {
namespace {

RoutingParams RoutingParamsOf(const SimulationInputs& in) {
  const Scenario& s = in.scenario;
  RoutingParams params;
  params.spec = s.routing;
  params.tokens_per_gpu = s.tokens_per_gpu;
  params.token_sigma = s.token_sigma;
  params.balance = s.balance;
  params.top_k = s.top_k;
  params.capacity_factor = s.capacity_factor;
  params.seed = s.seed;
  params.drop_by_score = s.drop_policy == DropPolicy::kScore;
  params.gpus_per_node = in.topology.scale_up.domain_gpus;  // "node" = NVLink domain
  params.node_limit = s.node_limit;
  params.burst_every = s.burst_every;
  params.burst_share = s.burst_share;
  return params;
}

// The placement before any rebalance (EPLB replaces it before step 0).
Placement InitialPlacement(const SimulationInputs& in) {
  const Scenario& s = in.scenario;
  if (s.parallelism == Parallelism::kTensor)
    return Placement::PerDomain(s.num_experts, s.gpus, DomainGpus(s, in.topology));
  if (s.placement == PlacementPolicy::kRoundRobin) return Placement::RoundRobin(s.num_experts, s.gpus);
  return Placement::Contiguous(s.num_experts, s.gpus);
}

StepRoutingOptions RoutingOptionsOf(const SimulationInputs& in) {
  const Scenario& s = in.scenario;
  StepRoutingOptions options;
  options.rebalancing = s.placement == PlacementPolicy::kEplb               ? Rebalancing::kGlobal
                        : s.placement == PlacementPolicy::kEplbHierarchical ? Rebalancing::kHierarchical
                                                                            : Rebalancing::kNone;
  options.redundant_experts = s.redundant_experts;
  options.rebalance_interval = s.rebalance_interval;
  options.domain_gpus = DomainGpus(s, in.topology);
  options.drift_steps = s.drift_steps;
  return options;
}

}  // namespace

SimulationResult RunSimulation(const SimulationInputs& in, TraceWriter* trace) {
  StepRouting routing(RoutingParamsOf(in), InitialPlacement(in), RoutingOptionsOf(in));
  StepBuilder builder(in);
  SimulationResult result;
  StepRecorder recorder(in, result);
  // A replay unit per pass: each step's forward, and in training its backward after it, on
  // the same routing; or, with the forward beside the backward, both in one unit.
  const Scenario& s = in.scenario;
  const bool both = s.mode == Mode::kTraining && s.overlap == Overlap::kForwardBackward;
  const int passes = s.mode == Mode::kTraining && !both ? 2 : 1;
  auto pass_of = [passes, both](int unit) {
    return both ? Pass::kBoth : unit % passes == 0 ? Pass::kForward : Pass::kBackward;
  };
  const EngineRun run = RunSteps(
      in, in.scenario.steps * passes,
      [&](int unit) {
        const int step = unit / passes;
        const Pass pass = pass_of(unit);
        return builder.Build(step, pass == Pass::kBackward ? routing.plan() : routing.Next(step), pass);
      },
      [&](int unit, const StepWork& work, const StepTimeline& timeline) {
        if (trace != nullptr) trace->AddStep(unit / passes, pass_of(unit), work, timeline);
        recorder.Add(unit / passes, pass_of(unit), routing.plan(), work, timeline);
      });
  result.engine = NameOf(EngineNames(), run.engine);
  result.network_model = run.description;
  result.summary = Summarize(result, in.scenario.gpus);
  result.summary.busiest_links = recorder.BusiestLinks();
  return result;
}

}  // namespace epsim
