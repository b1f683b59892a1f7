// epsim report: Chrome / Perfetto timeline of a run (Trace Event Format JSON).
//
// One process per node, one track per GPU. Per step, each GPU gets a "step N" slice with
// its phases nested inside (route, dispatch, expert, combine, reduce) and "wait" slices
// where it had nothing to do, with the reason in args. Each flow is an async slice on its
// sender ("dispatch" / "combine") with the destination GPU and bytes in args. Times are in
// microseconds, steps laid end to end. With micro-batches (two-batch overlap), compute
// tasks ("route 0", "expert 1", ...) sit on the GPU's track and its all-to-alls
// ("dispatch 0", ...) on a second track, "gpu N comm", since they overlap. Opens in ui.perfetto.dev and chrome://tracing.
#ifndef EPSIM_SIM_REPORT_TRACE_H_
#define EPSIM_SIM_REPORT_TRACE_H_

#include <cstdint>
#include <set>
#include <string>

#include "sim/engine/step_work.h"
#include "sim/config/topology.h"

namespace epsim {

class TraceWriter {
 public:
  // `layers`: the stack's MoE layers (with more than one, each slice names its layer).
  TraceWriter(const Topology& topology, int num_gpus, int layers = 1);
  // Appends one finished pass of one layer of a step (step_work.h names its slots), in the
  // order they ran.
  void AddStep(int step, int layer, Pass pass, const StepWork& work, const StepTimeline& timeline);
  // The whole trace as JSON text.
  std::string Json() const;

 private:
  void Slice(int gpu, const std::string& name, double start_s, double end_s,
             const std::string& args = "");
  void CommSlice(int gpu, const std::string& name, double start_s, double end_s);
  void Flows(int step, const std::string& phase, const std::vector<Flow>& flows,
             const std::vector<double>& start, const std::vector<double>& end);

  Topology topology_;
  int num_gpus_;
  int layers_;
  double offset_s_ = 0;  // start of the current step on the trace's clock
  int64_t next_flow_id_ = 0;
  std::string events_;
  std::set<int> comm_rows_;  // GPUs whose communication track is named already
};

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_TRACE_H_
