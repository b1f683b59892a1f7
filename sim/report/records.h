// epsim report: the records of a run (per GPU and step, per step, per expert and step) and
// their summary over steps: what the terminal table, the result files and the notebooks show.
// Definitions (README "Definitions"): step time from the step's start to the last GPU's
// end; phases on the critical path (the GPU that finished last); stall, the part of the
// step a GPU neither computes nor has own flows in flight; token skew, max over GPUs of
// expert-input tokens / mean; expert skew, max over experts of routed load / mean.
#ifndef EPSIM_SIM_REPORT_RECORDS_H_
#define EPSIM_SIM_REPORT_RECORDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sim/config/inputs.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"
#include "sim/report/attribution.h"
#include "sim/report/link_load.h"
#include "sim/workload/routing_plan.h"

namespace epsim {

// One GPU in one pass of one step (in training a forward and a backward record per step,
// whose slots step_work.h names). Durations in seconds.
struct GpuStepRecord {
  int step = 0;
  int gpu = 0;
  int layer = 0;
  Pass pass = Pass::kForward;
  double route_s = 0;      // route + permute compute
  double dispatch_s = 0;   // route end to all dispatch traffic arrived
  double expert_s = 0;     // expert compute
  double combine_s = 0;    // expert end to reduce done
  double compute_s = 0;    // route + expert + reduce compute
  double comm_s = 0;       // own flows in flight (dispatch + combine)
  double stall_s = 0;      // neither computing nor moving own data, until the step ends
  // Where the non-compute time went (sum = step time - compute; attribution.h): waiting for
  // peers, the calls' fixed costs, exposed communication (what its busiest own resource
  // needs for its own bytes, alone) and contention (the rest of its flows' time in flight).
  double wait_peers_s = 0;
  double fixed_cost_s = 0;
  double exposed_comm_s = 0;
  double contention_s = 0;
  PhaseSplit dispatch_split, combine_split;  // its time in each kind of call
  double end_s = 0;        // reduce done, since step start
  int64_t expert_tokens = 0;
  int64_t dropped_tokens = 0;          // this GPU's assignments dropped at capacity (at the source)
  int64_t unique_tokens_received = 0;  // tokens that reach this GPU, once each (incl. own)
  int64_t node_tokens_sent = 0;        // (token, destination domain) pairs (incl. own domain)
  double dispatch_sent_bytes = 0, dispatch_recv_bytes = 0;
  double combine_sent_bytes = 0, combine_recv_bytes = 0;
  double dispatch_GBps = 0; // sent bytes (not to itself) / own dispatch phase time
  double combine_GBps = 0;
};

// One pass's time and its phases on its critical GPU (the GPU that finished last).
struct PassTimes {
  double time_s = 0;
  double route_s = 0, dispatch_s = 0, expert_s = 0, combine_s = 0;
};

// One step: a replay unit per pass of each layer, summed. Phases are each unit's on its
// critical GPU (the GPU that finished last), summed over the layers; the critical GPU is
// the last layer's; stalls are each GPU's over all units; skews and all-to-all rates are
// means over the layers, assignments and drops sums. In training the step is its forward
// and then its backward: step_time_s, the stalls and the drops are the whole step's, the
// critical GPU, phases, splits and rates the forward's, and `backward` holds the
// backward's. With the forward beside the backward (Pass::kBoth) a layer's two passes are
// one replay: everything is the step's, but for forward_s and backward.time_s, when the last
// task of each pass ended in its unit (they overlap), and the backward's phases, which stay 0.
struct StepRecord {
  int step = 0;
  double step_time_s = 0;
  int critical_gpu = 0;    // the GPU that finished last
  double route_s = 0, dispatch_s = 0, expert_s = 0, combine_s = 0;  // on that GPU
  PhaseSplit dispatch_split, combine_split;                          // on that GPU
  double forward_s = 0;    // the forward pass (all of step_time_s without training)
  PassTimes backward;      // zeros without training
  int backward_critical_gpu = 0;
  double stall_min_s = 0, stall_median_s = 0, stall_max_s = 0;
  double token_skew = 0;   // max GPU expert-input tokens / mean
  double expert_skew = 0;  // max routed expert load (kept + dropped) / mean
  int64_t assignments = 0, dropped = 0;
  double dispatch_GBps = 0, combine_GBps = 0;  // mean over GPUs
  int64_t tokens = 0;      // through the stack: every GPU's tokens (the same in every layer)
  // The weights a rebalance moved: blocking, the time before the step; overlapped, the
  // time they were in flight beside it (each layer's, added up); 0: none. The bytes are the
  // flows' (a move relayed around a NIC that is down counts each hop).
  double rebalance_s = 0;
  double rebalance_bytes = 0;
};

struct ExpertStepRecord {
  int step = 0;
  int expert = 0;
  int64_t kept = 0;
  int64_t dropped = 0;
  int layer = 0;
};

// The link of one tier with the most load (bytes / capacity), means over the steps.
struct BusiestLink {
  std::string tier, name;
  double load_s = 0, busy_s = 0;
  double utilization = 0;  // load / step time
  int peak_flows = 0;      // the most over the steps
};

struct Summary {
  double wait_peers_s = 0, fixed_cost_s = 0, exposed_comm_s = 0, contention_s = 0;  // mean over GPUs and steps
  PhaseSplit dispatch_split, combine_split;  // the critical GPU's, mean over steps
  double step_time_s = 0, step_time_p50_s = 0, step_time_p99_s = 0;
  double route_s = 0, dispatch_s = 0, expert_s = 0, combine_s = 0;  // the forward's
  bool training = false;
  double forward_s = 0;  // means over steps, as StepRecord has them
  PassTimes backward;
  double stall_min_s = 0, stall_median_s = 0, stall_max_s = 0;  // per-GPU mean over steps
  double token_skew = 0, expert_skew = 0;                       // mean over steps
  int64_t dropped_tokens = 0, assignments = 0;
  double dropped_fraction = 0;
  double dispatch_GBps = 0, combine_GBps = 0;
  double tokens_per_s_per_gpu = 0;  // tokens through the stack / (GPUs x the steps' time)
  // Where stalls accumulate over a stack: the GPU with the most stall per step, the layer
  // where it stalls most, and that layer's share (per step, means over the steps).
  int most_stalled_gpu = 0, its_worst_layer = 0;
  double its_worst_layer_stall_s = 0;
  // Rebalances that cost time: how many steps had one, the bytes and time of all of them.
  int rebalances = 0;
  double rebalance_bytes = 0, rebalance_s = 0;
  std::vector<int> rebalanced_steps;
  std::vector<BusiestLink> busiest_links;  // one per tier that carried bytes, in link order
};

struct SimulationResult {
  std::string engine;         // the engine that ran: simgrid or analytic (auto resolved)
  std::string network_model;  // its description; for engine auto, why it was chosen
  std::vector<StepRecord> steps;
  std::vector<GpuStepRecord> gpus;
  std::vector<ExpertStepRecord> experts;
  std::vector<LinkStepRecord> links;  // links.csv
  Summary summary;
};

// Turns each replayed step into its records and appends them to a result.
class StepRecorder {
 public:
  // Keeps references to `inputs` and `result`.
  StepRecorder(const SimulationInputs& inputs, SimulationResult& result);
  // Adds one unit of step `step`: a pass of one layer, or a rebalance; a step's units come
  // together, in the order they ran. `routed`: a MoE layer's pass, routed by `plan`;
  // otherwise (a dense layer, a rebalance) `plan` only gives the step's tokens per GPU.
  void Add(int step, int layer, Pass pass, const RoutingPlan& plan, bool routed, const StepWork& work,
           const StepTimeline& timeline);
  // Per tier, the link with the most load over the recorded steps (names from the layout).
  std::vector<BusiestLink> BusiestLinks() const;
  const FabricLayout& layout() const { return layout_; }

 private:
  // GPU g's record, all but the tokens it received (which need every source's row).
  GpuStepRecord GpuRecord(int step, int g, const RoutingPlan& plan, const StepWork& work,
                          const StepTimeline& timeline, const TimeLost& lost, double compute_s) const;

  const SimulationInputs& inputs_;
  SimulationResult& result_;
  const FabricLayout layout_;
  std::vector<double> step_stalls_;  // per GPU: its stall over the current step's units so far
  int step_forward_units_ = 0;       // the current step's forward units so far (layers)
};

// The steps a rebalance moved weights before or beside, as text: "8, 16, 24".
std::string RebalancedSteps(const Summary& summary);

// The summary over the steps of `result`'s records, for a run of `num_gpus` GPUs.
Summary Summarize(const SimulationResult& result, int num_gpus);

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_RECORDS_H_
