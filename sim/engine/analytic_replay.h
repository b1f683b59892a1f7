// epsim engine: the fast path. Replays a step's phases like ReplaySteps (same rendezvous, same
// latency, same phase order) but computes flow completions analytically with per-link
// processor sharing (fluid.h) instead of SimGrid's max-min solver. O(F log F) per step
// instead of SimGrid's O(F x events); held to the SimGrid replay by tests and benchmarks.
#ifndef EPSIM_SIM_ENGINE_ANALYTIC_REPLAY_H_
#define EPSIM_SIM_ENGINE_ANALYTIC_REPLAY_H_

#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"

namespace epsim {

// The timeline of one step, as ReplaySteps would report it.
StepTimeline AnalyticReplayStep(const FabricLayout& layout, const StepWork& work);

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_ANALYTIC_REPLAY_H_
