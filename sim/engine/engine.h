// epsim engine: replays every step of a run on the engine its scenario asks for.
//
//   simgrid   every flow one mailbox put/get on SimGrid (replay.h): the reference
//   analytic  the fast path (analytic_replay.h): exact max-min where it is predicted to take
//             seconds, per-link processor sharing beyond
//   auto      simgrid where its replay is predicted to take seconds, analytic beyond
#ifndef EPSIM_SIM_ENGINE_ENGINE_H_
#define EPSIM_SIM_ENGINE_ENGINE_H_

#include <functional>
#include <string>

#include "sim/config/inputs.h"
#include "sim/engine/step_work.h"

namespace epsim {

// What auto runs SimGrid for: a predicted replay of at most this many CPU seconds.
constexpr double kAutoSimGridLimitS = 30;

// CPU seconds the SimGrid replay takes for `steps` steps of `flows_per_step` flows (dispatch
// and combine; a flow striped over several NICs counts once per stripe), from the scale ladder of BENCHMARKS.md (commit 978f565, 2-core Xeon): 1.49 s
// for one step of 8064 flows (64 GPUs, direct), 21.8 s for 32512 (128 GPUs): a power law
// of exponent 1.93 (each flow's end re-solves the sharing of the flows in flight). It
// predicts the 256-GPU run (130560 flows, 261 s measured) at 319 s.
double PredictedSimGridCpuS(double flows_per_step, int steps);

// CPU seconds the fast path's exact max-min solver (max_min.h, at EndPrecisionS) takes for
// the same, measured like the above on its slowest case, uniform routing (flows that end at
// nearly one rate, so that each end refills most of them; Zipf 1.0 takes 2-6x less), on the
// same machine type when the precision came in (parent commit b349f0f): 4.45 s for one step
// of 32512 flows (128 GPUs, direct, 4096 tokens), 37.3 s for 130560 (256 GPUs): exponent
// 1.53; it predicts 0.53 s for 8064 flows (64 GPUs; 0.49 s measured).
// With `sharing: auto` the fast path uses it where this is at most kMaxMinLimitS, per-link
// processor sharing beyond.
double PredictedMaxMinCpuS(double flows_per_step, int steps);
constexpr double kMaxMinLimitS = 10;

// The precision both engines solve max-min sharing at: flows whose ends fall this close
// together end together (SimGrid's surf/precision; MaxMinCompletions). 1e-4 of the time one
// GPU needs to send all its tokens over the topology's slowest per-GPU link, within
// [1e-10, 1e-5] s: on the default scenario this moved SimGrid's step time by 0.02% against
// 1e-9 and halved its run.
double EndPrecisionS(const SimulationInputs& inputs);

struct EngineRun {
  Engine engine = Engine::kSimGrid;  // the engine that ran (auto resolved)
  std::string description;           // its network model, and for auto why it was chosen
};

// Runs `units` replay units one after the other, each starting once every GPU has finished
// the last: the run's steps, or in training each step's forward and then its backward pass.
// `make_unit(u)` builds unit u's work, between units; `on_unit(u, work, timeline)` receives
// each finished unit. The SimGrid engine exists once per process: call once.
EngineRun RunSteps(const SimulationInputs& inputs, int units, const std::function<StepWork(int unit)>& make_unit,
                   const std::function<void(int unit, const StepWork&, const StepTimeline&)>& on_unit);

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_ENGINE_H_
