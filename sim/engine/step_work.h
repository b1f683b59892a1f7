// epsim engine: what one EP step asks of the cluster, and the per-GPU timeline that results.
// Shared by the SimGrid replay (replay.h) and the analytic fast path (analytic_replay.h).
#ifndef EPSIM_SIM_ENGINE_STEP_WORK_H_
#define EPSIM_SIM_ENGINE_STEP_WORK_H_

#include <string>
#include <utility>
#include <vector>

namespace epsim {

// Which pass of the MoE layer a replayed unit is. In training, the backward mirrors the
// forward task for task (step_builder.h): its first all-to-all carries the combine's
// gradients the way the dispatch went, its second the dispatch's gradients the way the
// combine came back; StepWork and GpuTimeline keep the forward's names for its slots.
// kBoth: the forward as micro-batch 0 beside the backward as micro-batch 1 (overlap
// forward-backward). kRebalance: the expert weights a rebalance moves, before its step's
// first layer, as flows in the dispatch slot (nothing to compute).
enum class Pass { kForward, kBackward, kBoth, kRebalance };
inline const char* PassName(Pass pass) {
  return pass == Pass::kForward    ? "forward"
         : pass == Pass::kBackward ? "backward"
         : pass == Pass::kBoth     ? "forward+backward"
                                   : "rebalance";
}
// The pass micro-batch m of a `unit` belongs to.
inline Pass MicroBatchPass(Pass unit, int m) {
  return unit != Pass::kBoth ? unit : m == 0 ? Pass::kForward : Pass::kBackward;
}
// What one of StepWork's slots (route, dispatch, expert, combine, reduce) holds in `pass`:
// itself in the forward; in the backward the gradient of the forward task it mirrors
// ("reduce grad" in the route slot, "combine grad", "expert grad", "dispatch grad", and
// "route grad" in the reduce slot).
std::string SlotName(Pass pass, const std::string& slot);

struct Flow {
  int src = 0;
  int dst = 0;              // == src: a GPU's own tokens, through its SMs only (SM budgets)
  double bytes = 0;
  bool via_fabric = false;  // through the NICs even inside an NVLink domain (rdma-only)
  int micro_batch = 0;      // with two-batch overlap: which micro-batch it belongs to
  bool IsSelf() const { return src == dst; }
};

// What one all-to-all call costs each GPU before its data moves (sim/traffic/comm_model.h):
// GPU g is ready at (barrier ? the latest entry of any GPU : its own entry) + overhead_s[g],
// and its flows start once both of their GPUs are ready.
struct CallCost {
  bool barrier = false;
  std::vector<double> overhead_s;  // per GPU: fixed cost + messages x cost per message; empty: none
  double OverheadS(int g) const { return overhead_s.empty() ? 0 : overhead_s[g]; }
};

// What one step asks of the platform: flows per all-to-all and local compute per GPU.
//
// A step is one or more micro-batches m = 0..M-1. Each GPU runs a compute stream
//   route 0 .. route M-1, expert 0 .. expert M-1, reduce 0 .. reduce M-1
// and a communication stream
//   dispatch 0 .. dispatch M-1, combine 0 .. combine M-1,
// each task in stream order and after its input: dispatch m after route m, expert m after
// dispatch m, combine m after expert m, reduce m after combine m. With M = 1 this is the
// plain sequence; with M = 2 expert 0 runs while dispatch 1 moves and expert 1 while
// combine 0 moves (two-batch overlap). Expert weights moving beside the step (an overlapped
// rebalance) are one more exchange on the communication stream, after the last dispatch and
// before the first combine, so they move while the experts compute and delay the combine
// only if they are still moving when it could start.
struct StepWork {
  int micro_batches = 1;
  std::vector<Flow> dispatch;   // bytes > 0; all micro-batches; src == dst only with an SM budget
  std::vector<Flow> combine;
  std::vector<Flow> moves;      // expert weights beside the step (micro-batch 0); empty: none
  std::vector<CallCost> dispatch_cost, combine_cost;  // per micro-batch; empty: no costs
  std::vector<double> route_s;  // per GPU: gate, top-k, layout, permute (sum over micro-batches)
  std::vector<double> expert_s; // per GPU: grouped GEMM of its experts (+ shared experts)
  std::vector<double> reduce_s; // per GPU: un-permute and weighted sum after combine
  // With M > 1: the same per micro-batch, [m][gpu]; their sums are the vectors above.
  std::vector<std::vector<double>> batch_route_s, batch_expert_s, batch_reduce_s;
  // Links running below their rate this step (faults): (FabricLayout link, fraction), each
  // link once; the compute of slowed GPUs is already in the durations above.
  std::vector<std::pair<int, double>> link_rate;
  // Per FabricLayout link, nonzero where it is down this step (a fault at fraction 0;
  // also in link_rate at 0); empty when none is. Routes avoid them (FabricLayout::RouteLinks).
  std::vector<char> link_down;

  double RouteS(int m, int g) const { return micro_batches == 1 ? route_s[g] : batch_route_s[m][g]; }
  double ExpertS(int m, int g) const { return micro_batches == 1 ? expert_s[g] : batch_expert_s[m][g]; }
  double ReduceS(int m, int g) const { return micro_batches == 1 ? reduce_s[g] : batch_reduce_s[m][g]; }
  // The cost of dispatch (combine) call m; none when the step carries no costs.
  const CallCost& DispatchCost(int m) const { return m < static_cast<int>(dispatch_cost.size()) ? dispatch_cost[m] : kNoCost; }
  const CallCost& CombineCost(int m) const { return m < static_cast<int>(combine_cost.size()) ? combine_cost[m] : kNoCost; }

 private:
  static inline const CallCost kNoCost{};
};

// One task of a GPU's timeline (micro-batches only: with M = 1 the phase ends say it all).
struct TaskSpan {
  const char* name = "";  // route, expert, reduce (compute); dispatch, weights, combine (communication)
  int micro_batch = 0;
  bool communication = false;
  double start = 0, end = 0;  // seconds since the step started; for an all-to-all, enter and leave
};

// Timeline of one GPU in one step; times are seconds since the step started. With
// micro-batches, each phase end is that of the last micro-batch.
struct GpuTimeline {
  double route_end = 0;
  double dispatch_end = 0;      // all dispatch sends and receives arrived; expert starts
  double expert_end = 0;
  double combine_end = 0;       // all combine sends and receives arrived; reduce starts
  double moves_end = 0;         // its communication stream left the weight moves (StepWork::moves); 0: none
  double end = 0;               // reduce done
  double dispatch_comm_s = 0;   // time with at least one own dispatch flow in flight
  double combine_comm_s = 0;
  double dispatch_sent_bytes = 0;
  double combine_sent_bytes = 0;
  double dispatch_recv_bytes = 0;
  double combine_recv_bytes = 0;
  std::vector<TaskSpan> tasks;  // with M > 1: every task, for traces and attribution
};

struct StepTimeline {
  double step_time_s = 0;       // start to the last GPU's end
  std::vector<GpuTimeline> gpus;
  // Per flow of StepWork::dispatch / combine: when it started moving and when it arrived
  // (latency included), seconds since the step started.
  std::vector<double> dispatch_flow_start, dispatch_flow_end;
  std::vector<double> combine_flow_start, combine_flow_end;
  std::vector<double> moves_flow_start, moves_flow_end;  // per flow of StepWork::moves
};

// Indices into `flows` of each micro-batch's flows, in order.
std::vector<std::vector<int>> FlowsByMicroBatch(const std::vector<Flow>& flows, int micro_batches);

// The union of [start, end) spans as sorted, disjoint spans.
std::vector<std::pair<double, double>> MergedSpans(std::vector<std::pair<double, double>> spans);

// Fills each GPU's busy time per all-to-all (time with at least one of its flows in flight),
// its bytes sent and received (its own tokens excluded) and its calls' overheads, from the
// flows and their start and arrival times.
void FillFlowTotals(const StepWork& work, StepTimeline& timeline);

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_STEP_WORK_H_
