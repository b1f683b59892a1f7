// epsim report: where each GPU's time in a step went besides compute.
//
//   waiting for peers       in an all-to-all before any own flow could start (a peer was
//                           still routing or computing experts, or the call's barrier held
//                           it), and after finishing, for the slowest GPU
//   fixed cost              the calls' own overheads: launches, the count exchange, per
//                           message costs (sim/traffic/comm_model.h)
//   exposed communication   what its busiest own resource (NVLink or NIC port, SMs) needs
//                           for its own bytes, alone
//   contention              the rest of its flows' time in flight: shared links, incast
//
// The four add up to the step time minus the GPU's compute. With micro-batches (two-batch
// overlap), communication under compute is hidden: only time with own flows in flight (or
// overheads) and no compute counts as communication, split pro rata.
//
// Per all-to-all kind (dispatch, combine) each GPU's time in its calls also splits into
// fixed cost, moving data (own flows in flight) and waiting, whatever ran meanwhile.
#ifndef EPSIM_SIM_REPORT_ATTRIBUTION_H_
#define EPSIM_SIM_REPORT_ATTRIBUTION_H_

#include <vector>

#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"

namespace epsim {

// One GPU's time in the calls of one all-to-all kind, summed over micro-batches.
struct PhaseSplit {
  double fixed_s = 0;  // overheads
  double link_s = 0;   // own flows in flight
  double wait_s = 0;   // neither: peers not ready, the barrier
};

struct TimeLost {
  double wait_peers_s = 0;
  double fixed_s = 0;
  double exposed_comm_s = 0;
  double contention_s = 0;
  PhaseSplit dispatch, combine;
};

// Every GPU's split for one replayed step; `compute_s[g]`: GPU g's compute in the step.
std::vector<TimeLost> AttributeTimeLost(const FabricLayout& layout, const StepWork& work,
                                        const StepTimeline& timeline, const std::vector<double>& compute_s);

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_ATTRIBUTION_H_
