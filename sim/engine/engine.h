// epsim engine: replays every step of a run on the engine its scenario asks for.
//
//   simgrid   every flow one mailbox put/get on SimGrid (replay.h): the reference
//   analytic  per-link processor sharing (analytic_replay.h): the fast path
#ifndef EPSIM_SIM_ENGINE_ENGINE_H_
#define EPSIM_SIM_ENGINE_ENGINE_H_

#include <functional>
#include <string>

#include "sim/config/inputs.h"
#include "sim/engine/step_work.h"

namespace epsim {

// Runs `inputs.scenario.steps` steps: `make_step(s)` builds step s's work, between steps;
// `on_step(s, work, timeline)` receives each finished step. Returns the network model's
// description (for reports). The SimGrid engine exists once per process: call once.
std::string RunSteps(const SimulationInputs& inputs, const std::function<StepWork(int step)>& make_step,
                     const std::function<void(int step, const StepWork&, const StepTimeline&)>& on_step);

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_ENGINE_H_
