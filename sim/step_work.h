// epsim: what one EP step asks of the cluster, and the per-GPU timeline that results.
// Shared by the SimGrid replay (replay.h) and the analytic fast path (analytic_replay.h).
#ifndef EPSIM_SIM_STEP_WORK_H_
#define EPSIM_SIM_STEP_WORK_H_

#include <vector>

namespace epsim {

struct Flow {
  int src = 0;
  int dst = 0;
  double bytes = 0;
  bool via_fabric = false;  // through the NICs even inside an NVLink domain (rdma-only)
};

// What one step asks of the platform: flows per all-to-all and local compute per GPU.
struct StepWork {
  std::vector<Flow> dispatch;   // src != dst, bytes > 0
  std::vector<Flow> combine;
  std::vector<double> route_s;  // per GPU: gate, top-k, layout, permute
  std::vector<double> expert_s; // per GPU: grouped GEMM of its experts (+ shared experts)
  std::vector<double> reduce_s; // per GPU: un-permute and weighted sum after combine
};

// Timeline of one GPU in one step; times are seconds since the step started.
struct GpuTimeline {
  double route_end = 0;
  double dispatch_end = 0;      // all dispatch sends and receives arrived; expert starts
  double expert_end = 0;
  double combine_end = 0;       // all combine sends and receives arrived; reduce starts
  double end = 0;               // reduce done
  double dispatch_comm_s = 0;   // time with at least one own dispatch flow in flight
  double combine_comm_s = 0;
  double dispatch_sent_bytes = 0;
  double combine_sent_bytes = 0;
  double dispatch_recv_bytes = 0;
  double combine_recv_bytes = 0;
};

struct StepTimeline {
  double step_time_s = 0;       // start to the last GPU's end
  std::vector<GpuTimeline> gpus;
  // Per flow of StepWork::dispatch / combine: when it started moving and when it arrived
  // (latency included), seconds since the step started.
  std::vector<double> dispatch_flow_start, dispatch_flow_end;
  std::vector<double> combine_flow_start, combine_flow_end;
};

}  // namespace epsim

#endif  // EPSIM_SIM_STEP_WORK_H_
