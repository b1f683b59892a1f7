// epsim workload: the routing of each step of a run, in order: the expert placement in
// force and the plan sampled on it.
//
// With EPLB the placement is replaced every `rebalance_interval` steps from the loads routed
// in the interval before (for the first interval, from that many extra samples of the same
// routing, standing for the history before step 0), so a plan is always stale, as in
// deployment. Popularity drifts every `drift_steps` steps (RoutingParams::epoch).
#ifndef EPSIM_SIM_WORKLOAD_STEP_ROUTING_H_
#define EPSIM_SIM_WORKLOAD_STEP_ROUTING_H_

#include <optional>
#include <vector>

#include "sim/workload/placement.h"
#include "sim/workload/routing_plan.h"
#include "sim/workload/sampler.h"

namespace epsim {

// How the placement is rebalanced from observed loads.
enum class Rebalancing {
  kNone,          // the initial placement throughout
  kGlobal,        // EPLB over all GPUs (BalancedReplication)
  kHierarchical,  // EPLB within each domain of `domain_gpus` (HierarchicalReplication)
};

struct StepRoutingOptions {
  Rebalancing rebalancing = Rebalancing::kNone;
  int redundant_experts = 0;   // EPLB's extra copies
  int rebalance_interval = 1;  // steps between rebalances
  int domain_gpus = 1;         // kHierarchical: GPUs per domain
  int drift_steps = 0;         // popularity redrawn every N steps; 0: fixed
  // A plan made at a step after step 0 takes effect a step later: its weights move during
  // the step it was made at, which still routes on the old placement (overlapped rebalancing).
  bool defer_new_placement = false;
};

// True when step `step` starts with a new placement: every rebalance_interval steps with
// EPLB, step 0 included (the plan in force when the run starts).
inline bool RebalancesAt(const StepRoutingOptions& options, int step) {
  return options.rebalancing != Rebalancing::kNone && step % options.rebalance_interval == 0;
}

class StepRouting {
 public:
  // `initial`: the placement before any rebalance (EPLB replaces it before step 0).
  StepRouting(RoutingParams params, Placement initial, StepRoutingOptions options);

  // The plan of step `step`; steps come in order 0, 1, 2, ...
  const RoutingPlan& Next(int step);
  // The placement the last step routed on.
  const Placement& placement() const { return placement_; }
  // With defer_new_placement: the plan made at the last step, in force from the next one;
  // nullptr when the last step made none.
  const Placement* pending() const { return pending_ ? &*pending_ : nullptr; }
  const RoutingPlan& plan() const { return plan_; }

 private:
  // The plan from the loads since the last one (for step 0, from the history samples).
  Placement Rebalance(int step);

  RoutingParams params_;
  Placement placement_;
  std::optional<Placement> pending_;
  StepRoutingOptions options_;
  RoutingPlan plan_;
  std::vector<double> window_load_;  // routed load per expert since the last rebalance
};

}  // namespace epsim

#endif  // EPSIM_SIM_WORKLOAD_STEP_ROUTING_H_
