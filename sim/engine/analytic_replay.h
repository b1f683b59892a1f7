// epsim engine: the fast path. Replays a step's phases like ReplaySteps (same rendezvous, same
// latency, same phase order) but computes flow completions without SimGrid, with one of two
// sharing solvers:
//   max-min             exact max-min fair sharing, SimGrid's model (max_min.h); its cost
//                       grows with flows x events, about as SimGrid's but 5-15x lower
//   processor sharing   each link a processor-sharing server on its own (fluid.h):
//                       O(F log F), exact with one bottleneck per flow, an approximation
//                       when flows bind on different links (oversubscribed fabrics)
#ifndef EPSIM_SIM_ENGINE_ANALYTIC_REPLAY_H_
#define EPSIM_SIM_ENGINE_ANALYTIC_REPLAY_H_

#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"

namespace epsim {

enum class SharingSolver { kMaxMin, kProcessorSharing };

// The timeline of one step, as ReplaySteps would report it; max-min at `precision_s`
// (MaxMinCompletions).
StepTimeline AnalyticReplayStep(const FabricLayout& layout, const StepWork& work,
                                SharingSolver solver = SharingSolver::kMaxMin, double precision_s = 0);

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_ANALYTIC_REPLAY_H_
