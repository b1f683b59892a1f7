// epsim simulation: scenario to records (see simulation.h).
#include "sim/simulation/simulation.h"

#include <vector>

#include "sim/engine/engine.h"
#include "sim/engine/step_builder.h"
#include "sim/workload/placement.h"
#include "sim/workload/sampler.h"
#include "sim/workload/step_routing.h"
#include "sim/workload/weight_moves.h"

namespace epsim {
namespace {

// The routing parameters every layer shares (each layer adds its own spec and index).
RoutingParams RoutingParamsOf(const SimulationInputs& in) {
  const Scenario& s = in.scenario;
  RoutingParams params;
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
  options.defer_new_placement = s.rebalance_cost == RebalanceCost::kOverlapped;
  return options;
}

// One replay unit: a pass of one layer in one step (layers numbered through the stack: the
// dense ones first), or a step's rebalance (every layer's weights; layer -1).
struct Unit {
  int step = 0;
  int layer = 0;
  Pass pass = Pass::kForward;
};

// The units of every step in order: each step's layers forward, and in training their
// backward after them from the last layer to the first, on the same routing; or, with the
// forward beside the backward, both passes of a layer in one unit. With blocking rebalances,
// a step that starts with a new placement (not the first) first moves the weights; with
// overlapped ones each MoE layer's forward moves its own beside it (RunSimulation).
std::vector<Unit> UnitsOf(const SimulationInputs& in) {
  const Scenario& s = in.scenario;
  const bool both = s.mode == Mode::kTraining && s.overlap == Overlap::kForwardBackward;
  std::vector<Unit> units;
  for (int step = 0; step < s.steps; ++step) {
    if (s.rebalance_cost == RebalanceCost::kBlocking && step > 0 && RebalancesAt(RoutingOptionsOf(in), step))
      units.push_back({step, -1, Pass::kRebalance});
    const int stack = s.dense_layers + s.layers;
    for (int layer = 0; layer < stack; ++layer) units.push_back({step, layer, both ? Pass::kBoth : Pass::kForward});
    if (s.mode != Mode::kTraining || both) continue;
    for (int layer = stack - 1; layer >= 0; --layer) units.push_back({step, layer, Pass::kBackward});
  }
  return units;
}

}  // namespace

SimulationResult RunSimulation(const SimulationInputs& in, TraceWriter* trace) {
  const Scenario& s = in.scenario;
  std::vector<StepRouting> routings;  // per MoE layer (stack layer dense_layers + i)
  for (int layer = 0; layer < s.layers; ++layer) {
    RoutingParams params = RoutingParamsOf(in);
    params.spec = s.RoutingOfLayer(layer);
    params.layer = layer;
    routings.emplace_back(params, InitialPlacement(in), RoutingOptionsOf(in));
  }
  StepBuilder builder(in);
  SimulationResult result;
  StepRecorder recorder(in, result);
  const std::vector<Unit> units = UnitsOf(in);
  // Each layer's routing advances once per step, at its step's first unit that needs it.
  std::vector<int> routed_step(s.layers, -1);
  auto route = [&](int layer, int step) -> const RoutingPlan& {
    if (routed_step[layer] < step) {
      routings[layer].Next(step);
      routed_step[layer] = step;
    }
    return routings[layer].plan();
  };
  const EngineRun run = RunSteps(
      in, static_cast<int>(units.size()),
      [&](int u) {
        const Unit& unit = units[u];
        if (unit.pass == Pass::kRebalance) {  // every layer's new copies, fetched from the old placement
          std::vector<WeightMove> moves;
          for (int layer = 0; layer < s.layers; ++layer) {
            const Placement before = routings[layer].placement();
            route(layer, unit.step);
            for (const WeightMove& m : WeightMoves(before, routings[layer].placement(), DomainGpus(s, in.topology)))
              moves.push_back(m);
          }
          return builder.Rebalance(unit.step, moves);
        }
        // A dense layer computes over the step's tokens per GPU, which every layer shares.
        if (unit.layer < s.dense_layers) return builder.Dense(unit.step, route(0, unit.step), unit.pass);
        const int layer = unit.layer - s.dense_layers;
        const RoutingPlan& plan = route(layer, unit.step);
        // An overlapped rebalance: the layer's new copies move beside its forward, from the
        // placement the step still routes on.
        const Placement* next = routings[layer].pending();
        if (next == nullptr || unit.pass == Pass::kBackward) return builder.Build(unit.step, plan, unit.pass);
        return builder.Build(unit.step, plan, unit.pass,
                             WeightMoves(routings[layer].placement(), *next, DomainGpus(s, in.topology)));
      },
      [&](int u, const StepWork& work, const StepTimeline& timeline) {
        const Unit& unit = units[u];
        if (trace != nullptr) trace->AddStep(unit.step, unit.layer, unit.pass, work, timeline);
        const bool routed = unit.layer >= s.dense_layers;  // a MoE layer's pass (not a rebalance, not dense)
        recorder.Add(unit.step, unit.layer, unit.pass, routings[routed ? unit.layer - s.dense_layers : 0].plan(), routed,
                     work, timeline);
      });
  result.engine = NameOf(EngineNames(), run.engine);
  result.network_model = run.description;
  result.summary = Summarize(result, in.scenario.gpus);
  result.summary.busiest_links = recorder.BusiestLinks();
  return result;
}

}  // namespace epsim
