// epsim workload: per-step routing with EPLB windows and drift (see step_routing.h).
#include "sim/workload/step_routing.h"

#include <algorithm>
#include <utility>

#include "sim/workload/eplb.h"

namespace epsim {
namespace {

// Step indices of the routing samples that stand for the history before step 0.
constexpr int kHistoryStepBase = 1'000'000'000;

}  // namespace

StepRouting::StepRouting(RoutingParams params, Placement initial, StepRoutingOptions options)
    : params_(std::move(params)), placement_(std::move(initial)), options_(options),
      window_load_(placement_.num_experts(), 0.0) {}

Placement StepRouting::Rebalance(int step) {
  const int num_experts = placement_.num_experts(), num_gpus = placement_.num_gpus();
  if (step == 0) {
    const Placement base = Placement::Contiguous(num_experts, num_gpus);
    params_.epoch = 0;  // the history before step 0 has step 0's popularity
    for (int i = 0; i < options_.rebalance_interval; ++i) {
      const RoutingPlan history = SampleRouting(params_, base, kHistoryStepBase + i);
      for (int e = 0; e < num_experts; ++e)
        window_load_[e] += static_cast<double>(history.expert_kept[e] + history.expert_dropped[e]);
    }
  }
  // Hierarchical: one group of contiguous experts per domain, its copies kept there.
  Placement plan = options_.rebalancing == Rebalancing::kHierarchical
                       ? HierarchicalReplication(window_load_, num_gpus, options_.redundant_experts,
                                                 options_.domain_gpus)
                       : BalancedReplication(window_load_, num_gpus, options_.redundant_experts);
  std::fill(window_load_.begin(), window_load_.end(), 0.0);
  return plan;
}

const RoutingPlan& StepRouting::Next(int step) {
  if (pending_) {
    placement_ = std::move(*pending_);
    pending_.reset();
  }
  if (RebalancesAt(options_, step)) {
    if (options_.defer_new_placement && step > 0)
      pending_ = Rebalance(step);
    else
      placement_ = Rebalance(step);
  }
  params_.epoch = options_.drift_steps > 0 ? step / options_.drift_steps : 0;
  plan_ = SampleRouting(params_, placement_, step);
  for (int e = 0; e < placement_.num_experts(); ++e)
    window_load_[e] += static_cast<double>(plan_.expert_kept[e] + plan_.expert_dropped[e]);
  return plan_;
}

}  // namespace epsim
