// epsim: replays EP steps on a SimGrid platform and records per-GPU timelines.
//
// One actor per GPU runs, for every step:
//   route (local compute) -> dispatch (all-to-all) -> expert (local compute)
//   -> combine (all-to-all back) -> reduce (local weighted sum).
// Steps start together (a barrier), as consecutive MoE layers would after a sync.
//
// An all-to-all follows NCCL's grouped send/recv: the flow g -> h starts once both g and h
// have entered the phase, and a GPU leaves the phase when all of its sends and receives
// have arrived (route latency included). Flows are SimGrid comms between explicit hosts
// (the platform picks the NVLink or the fabric plane), started by small "lane" actors
// that hold at most kFlowsPerLane comms each (SimGrid 3.32 scans an actor's pending
// activities at every completion).
//
// FlowIssue::kMailboxPerFlow replays the same semantics the way a SimGrid user would
// write it plainly: one mailbox put/get pair per (src, dst) flow, posted by the GPU's own
// actors (one on each host its flows start or end at). It is kept as the baseline the
// scale benchmark measures against (tools/bench/ladder.sh), not for everyday use.
#ifndef EPSIM_SIM_REPLAY_H_
#define EPSIM_SIM_REPLAY_H_

#include <functional>
#include <vector>

#include "sim/platform.h"
#include "sim/step_work.h"

namespace epsim {

constexpr int kFlowsPerLane = 128;

enum class FlowIssue {
  kLanes,           // sendto comms held by lane actors (epsim's SimGrid engine)
  kMailboxPerFlow,  // one mailbox put/get per flow (the plain baseline)
};

// Runs `num_steps` steps. `make_step(s)` is called once per step, between steps, to build
// its work (so only one step's traffic is held at a time); `on_step(s, work, timeline)`
// receives each finished step. Must run in a process whose SimGrid engine was created
// for this platform; runs the engine to completion.
void ReplaySteps(simgrid::s4u::Engine& engine, const Platform& platform, int num_steps,
                 const std::function<StepWork(int step)>& make_step,
                 const std::function<void(int step, const StepWork&, const StepTimeline&)>&
                     on_step,
                 FlowIssue issue = FlowIssue::kLanes);

}  // namespace epsim

#endif  // EPSIM_SIM_REPLAY_H_
