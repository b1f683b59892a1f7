// epsim: `epsim compare`: several strategies side by side in one table.
//
//   epsim compare default --vary a2a=direct,hierarchical --vary capacity-factor=1.0,1.25,none
//   epsim compare default --vary placement=contiguous,eplb --redundant-experts 64 --engine analytic
//
// Each --vary FLAG=V1,V2,... is one axis; every combination is one variant. Other flags are
// fixed for every variant. The variants run as an `epsim sweep` into --out DIR (default
// results/compare), so completed variants are reused, and the table summarises each
// variant over its steps: step time mean / p99, phases on the critical path, worst stall,
// token skew, dropped fraction, achieved all-to-all bandwidth.
#ifndef EPSIM_SIM_COMPARE_H_
#define EPSIM_SIM_COMPARE_H_

#include "sim/sweep.h"

namespace epsim {

// `epsim compare ...` (argv[1] == "compare"). Returns the exit status.
int RunCompareCommand(int argc, char** argv, SimulateFn simulate = nullptr);

}  // namespace epsim

#endif  // EPSIM_SIM_COMPARE_H_
