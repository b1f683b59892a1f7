// epsim engine: replays EP steps on a SimGrid platform and records per-GPU timelines.
//
// Per GPU, a compute actor and a communication actor run the two streams of step_work.h
// for every step:
//   route (local compute) -> dispatch (all-to-all) -> expert (local compute)
//   -> combine (all-to-all back) -> reduce (local weighted sum),
// per micro-batch. Steps start together (a barrier), as consecutive MoE layers would
// after a sync.
//
// An all-to-all follows NCCL's grouped send/recv: the flow g -> h starts once both g and h
// have entered the phase, and a GPU leaves the phase when all of its sends and receives
// have arrived (route latency included). Each flow is one mailbox put/get between the
// hosts the platform gives for it (NVLink or fabric plane): the plain replay a SimGrid
// user would write, which is also what the scale benchmark measures the fast path against.
#ifndef EPSIM_SIM_ENGINE_REPLAY_H_
#define EPSIM_SIM_ENGINE_REPLAY_H_

#include <functional>
#include <vector>

#include "sim/engine/platform.h"
#include "sim/engine/step_work.h"

namespace epsim {

// Runs `num_steps` steps. `make_step(s)` is called once per step, between steps, to build
// its work (so only one step's traffic is held at a time); `on_step(s, work, timeline)`
// receives each finished step. Must run in a process whose SimGrid engine was created
// for this platform; runs the engine to completion.
void ReplaySteps(simgrid::s4u::Engine& engine, Platform& platform, int num_steps,
                 const std::function<StepWork(int step)>& make_step,
                 const std::function<void(int step, const StepWork&, const StepTimeline&)>&
                     on_step);

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_REPLAY_H_
