// epsim report: where each GPU's time in a step went besides compute.
//
//   waiting for peers       in an all-to-all before any own flow could start (a peer was
//                           still routing or computing experts), and after finishing, for
//                           the slowest GPU
//   exposed communication   what its busiest port needs for its own bytes, alone
//   contention              the rest of its flows' time in flight: shared links, incast
//
// The three add up to the step time minus the GPU's compute. With micro-batches
// (two-batch overlap), communication under compute is hidden: only time with own flows in
// flight and no compute counts as communication, split pro rata.
#ifndef EPSIM_SIM_REPORT_ATTRIBUTION_H_
#define EPSIM_SIM_REPORT_ATTRIBUTION_H_

#include <vector>

#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"

namespace epsim {

struct TimeLost {
  double wait_peers_s = 0;
  double exposed_comm_s = 0;
  double contention_s = 0;
};

// Every GPU's split for one replayed step; `compute_s[g]`: GPU g's compute in the step.
std::vector<TimeLost> AttributeTimeLost(const FabricLayout& layout, const StepWork& work,
                                        const StepTimeline& timeline, const std::vector<double>& compute_s);

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_ATTRIBUTION_H_
