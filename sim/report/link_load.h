// epsim report: what each link of the fabric carried in one step (links.csv), from the
// step's flows, their routes (FabricLayout, the same on both engines) and when each flow
// started and arrived.
#ifndef EPSIM_SIM_REPORT_LINK_LOAD_H_
#define EPSIM_SIM_REPORT_LINK_LOAD_H_

#include <vector>

#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"

namespace epsim {

// One link in one step (only links that carried bytes).
struct LinkStepRecord {
  int step = 0;
  int layer = 0;
  Pass pass = Pass::kForward;
  int link = 0;          // FabricLayout's index: LinkName and LinkTier say what it is
  double capacity_Bps = 0;  // its rate this step (a fault's fraction applied)
  double bytes = 0;      // every flow crossing it: dispatch, combine and weights moved beside them
  double load_s = 0;     // bytes / capacity: the time its bytes need at its rate
  double busy_s = 0;     // time with at least one flow crossing it in flight
  int peak_flows = 0;    // most flows crossing it at once
};

// The links of one step. A flow is in flight from its start to its arrival (route latency
// included), as the replay reports them; at equal times arrivals count before starts.
std::vector<LinkStepRecord> LinkLoads(const FabricLayout& layout, int step, const StepWork& work,
                                      const StepTimeline& timeline);

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_LINK_LOAD_H_
