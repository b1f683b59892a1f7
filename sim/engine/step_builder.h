// epsim engine: one step's work (its flows and every GPU's compute durations) from the
// step's routing plan: the all-to-all algorithm's flows (sim/traffic), the cost model's
// durations, two micro-batches under two-batch overlap, or tensor parallelism's collectives.
#ifndef EPSIM_SIM_ENGINE_STEP_BUILDER_H_
#define EPSIM_SIM_ENGINE_STEP_BUILDER_H_

#include <functional>
#include <map>
#include <vector>

#include "sim/config/inputs.h"
#include "sim/engine/cost_model.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"
#include "sim/traffic/comm_model.h"
#include "sim/traffic/traffic.h"
#include "sim/workload/routing_plan.h"
#include "sim/workload/weight_moves.h"

namespace epsim {

// The layer's shape as the cost model needs it.
LayerShape ShapeOf(const Scenario& scenario);

// The SM budget of a run's all-to-alls, as the fabric layout takes it (none: no SM links).
SmBudget SmBudgetOf(const SimulationInputs& inputs);

class StepBuilder {
 public:
  // Keeps a reference to `inputs`. Throws ConfigError for a fault naming a link the
  // layout does not have.
  explicit StepBuilder(const SimulationInputs& inputs);

  // Step `step`'s work for one pass of the layer, with the faults active at that step
  // applied.
  //
  // The backward pass (training) has the forward's shape, each slot holding the gradient of
  // the forward's task in the mirrored slot:
  //   route     the weighted sum's gradient: the output gradient scaled into one copy per
  //             expert (and the routing weights' gradients), priced as the forward's reduce,
  //             which moves the same bytes
  //   dispatch  the combine's gradients, from each token's GPU to its experts' GPUs: the
  //             dispatch's flows, through the dispatch kernels in the dispatch's dtype (as
  //             DeepSeek-V3 trains: these gradients in FP8 like its dispatch, both combines
  //             in BF16; arXiv:2412.19437, section 3.3.2)
  //   expert    the experts' input and weight gradients (CostModel::ExpertsBackwardS), after
  //             the experts' forward again with workload.recompute
  //   combine   the dispatch's gradients, back to the tokens' GPUs: the combine's flows
  //   reduce    the copies' gradients summed per token (the forward's reduce again) and the
  //             gate GEMM's input and weight gradients (twice the forward's route)
  // Under tensor parallelism the gradient of the all-gather is a reduce-scatter and the other
  // way round: again the forward's flows in the forward's slots.
  //
  // Pass::kBoth (overlap forward-backward): the forward of the step's tokens as micro-batch 0
  // and a backward of as many tokens as micro-batch 1, as in DualPipe's overlapped chunks,
  // where the backward beside a forward is an earlier micro-batch's; here it has the same
  // step's routing.
  // `beside`: expert weights an overlapped rebalance moves during this unit (StepWork::moves).
  StepWork Build(int step, const RoutingPlan& plan, Pass pass = Pass::kForward,
                 const std::vector<WeightMove>& beside = {});
  // A dense layer of step `step` (model.dense_layers) over the plan's tokens per GPU: its
  // attention in the route slot (its gradients in the reduce slot), its FFN in the expert
  // slot (one expert of model.dense_ffn over all of the GPU's tokens; the backward twice
  // that), no all-to-all; halves and passes as Build has them.
  StepWork Dense(int step, const RoutingPlan& plan, Pass pass);
  // Step `step`'s rebalance (Pass::kRebalance): each move's expert weights as a flow from its
  // source to its destination (one flow per GPU pair), nothing computed.
  StepWork Rebalance(int step, const std::vector<WeightMove>& moves);

 private:
  // Expert parallelism, one micro-batch: the algorithm's flows and per-GPU durations.
  StepWork ExpertParallel(const RoutingPlan& plan, Pass pass);
  // Step `step`'s work from `one` (a micro-batch of a pass over a plan): as it is, its two
  // halves (two-batch overlap) or its forward beside its backward (Pass::kBoth), with the
  // step's faults applied.
  StepWork Assemble(int step, const RoutingPlan& plan, Pass pass,
                    const std::function<StepWork(const RoutingPlan&, Pass)>& one,
                    const std::vector<WeightMove>& beside = {});
  // Each move's expert weights as a flow from its source to its destination, one flow per
  // GPU pair, through peers where a NIC is down (AroundDownNics).
  std::vector<Flow> WeightFlows(const std::vector<WeightMove>& moves) const;
  // `flows` again with the flows of GPUs whose NIC is down this step sent through peers
  // (RouteAroundDownNics); a FieldError on faults when no peer can serve.
  std::vector<TokenFlow> AroundDownNics(std::vector<TokenFlow> flows) const;
  // One dense layer over each GPU's plan.source_tokens, one micro-batch of `pass`.
  StepWork DenseLayer(const RoutingPlan& plan, Pass pass);
  // Micro-batches 0, 1, ... from one-micro-batch parts: two-batch overlap (the two halves of
  // the plan, one pass) or forward beside backward (the whole plan, both passes).
  static StepWork MicroBatches(std::vector<StepWork> parts);
  // Tensor parallelism inside each NVLink domain: the domain's tokens all-gathered, every
  // GPU computing its 1/D slice of every expert over all of them, the partial outputs
  // reduce-scattered back to the tokens' GPUs.
  StepWork TensorParallel(const RoutingPlan& plan, Pass pass);
  // The expert slot's time for `rows` (per expert) and `shared_tokens` through each shared
  // expert, in `pass`, with `costs` (the whole experts, or under tensor parallelism a slice).
  double ExpertSlotS(CostModel& costs, Pass pass, const std::vector<int64_t>& rows, int64_t shared_tokens) const;
  // The reduce slot's time for a GPU's `returned` copies of its `tokens`, in `pass`.
  double ReduceSlotS(Pass pass, int64_t returned, int64_t tokens);
  // The layer's attention over a GPU's `tokens` (model.heads): it runs before the router,
  // in the route slot; its gradients after the router's, in the backward's reduce slot.
  void AddAttention(Pass pass, int64_t tokens, double& route_s, double& reduce_s);

  // Per GPU: the cost of one call in which it sends messages[g] messages.
  static CallCost CostOf(const CommModel& model, const std::vector<int64_t>& messages);
  // The links the faults active at `step` slow or take down, and the GPUs whose NIC is down.
  void ActivateFaults(int step);
  // The active faults on `work`: slowed GPUs' compute stretched, slowed and down links
  // listed; every fabric flow checked for a route around what is down.
  void ApplyFaults(StepWork& work) const;

  const SimulationInputs& inputs_;
  FabricLayout layout_;
  CostModel costs_;
  CostModel sliced_costs_;  // one GPU's slice of an expert under tensor parallelism
  CostModel dense_costs_;   // a dense layer's FFN: one expert of model.dense_ffn
  CommModel dispatch_model_, combine_model_;
  double dispatch_wire_bytes_, combine_wire_bytes_;  // one token (message) on the wire, either pass
  double expert_weight_bytes_;                       // one expert copy, as a rebalance moves it
  std::vector<std::vector<int>> fault_links_;  // per scenario fault: the links it slows
  // The step being built (ActivateFaults): its faults' links and fractions, the links
  // down (empty: none) and the GPUs whose NIC is down (empty: none).
  int step_ = 0;
  std::map<int, double> link_rate_;
  std::vector<char> link_down_, gpu_nic_down_;
};

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_STEP_BUILDER_H_
