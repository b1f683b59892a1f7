// epsim engine: the step loop on either engine (see engine.h).
#include "sim/engine/engine.h"

#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include "sim/engine/analytic_replay.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/platform.h"
#include "sim/engine/replay.h"
#include "sim/engine/step_builder.h"

namespace epsim {
namespace {

constexpr char kAnalyticModel[] =
    "analytic per-link processor sharing (fast path; route latency added per flow)";

// The slowest per-GPU link of the topology (NIC, or NVLink without a fabric).
double LinkFloorBps(const Topology& t) {
  return t.scale_out.nic_bandwidth_Bps > 0 ? t.scale_out.nic_bandwidth_Bps : t.scale_up.bandwidth_Bps;
}

}  // namespace

std::string RunSteps(const SimulationInputs& in, const std::function<StepWork(int step)>& make_step,
                     const std::function<void(int step, const StepWork&, const StepTimeline&)>& on_step) {
  const Scenario& s = in.scenario;
  const SmBudget sm = SmBudgetOf(in);
  if (s.engine == Engine::kAnalytic) {
    const FabricLayout layout(in.topology, s.gpus, sm);
    for (int step = 0; step < s.steps; ++step) {
      const StepWork work = make_step(step);
      on_step(step, work, AnalyticReplayStep(layout, work));
    }
    return kAnalyticModel;
  }
  int argc = 1;
  char name[] = "epsim";
  char* argv[] = {name, nullptr};
  simgrid::s4u::Engine engine(&argc, argv);
  xbt_log_control_set("root.thres:warning");
  const double send_all_s = static_cast<double>(s.tokens_per_gpu) * s.top_k * ShapeOf(s).dispatch_token_bytes /
                            LinkFloorBps(in.topology);
  Platform::ConfigurePrecision(engine, send_all_s);
  const std::string network_model = Platform::ConfigureNetworkModel(engine, s.gpus);
  Platform platform(in.topology, s.gpus, sm);
  ReplaySteps(engine, platform, s.steps, make_step, on_step);
  return network_model;
}

}  // namespace epsim
