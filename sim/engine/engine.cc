// epsim engine: the step loop on either engine (see engine.h).
#include "sim/engine/engine.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <utility>

#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include "common/numbers.h"
#include "sim/engine/analytic_replay.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/platform.h"
#include "sim/engine/replay.h"
#include "sim/engine/step_builder.h"

namespace epsim {
namespace {

// The slowest per-GPU link of the topology (NIC, or NVLink without a fabric).
double LinkFloorBps(const Topology& t) {
  return t.scale_out.nic_bandwidth_Bps > 0 ? t.scale_out.nic_bandwidth_Bps : t.scale_up.bandwidth_Bps;
}

// Whether links inside the fabric may bind flows that also bind elsewhere, where per-link
// processor sharing approximates max-min (BENCHMARKS.md): an oversubscribed leaf tier, an
// oversubscribed spine tier the run spans more than one pod of, or a NIC, link or switch
// slowed or down.
bool LinksMayBindTogether(const SimulationInputs& in, const FabricLayout& layout) {
  const ScaleOut& fabric = in.topology.scale_out;
  if (fabric.nics_per_node == 0) return false;  // NVLink only
  if (fabric.oversubscription > 1) return true;
  if (fabric.tiers == 3 && fabric.spine_oversubscription > 1 && !layout.SamePod(0, in.scenario.gpus - 1)) return true;
  return std::any_of(in.scenario.faults.begin(), in.scenario.faults.end(),
                     [](const Fault& f) { return f.kind != FaultKind::kGpu; });
}

}  // namespace

double EndPrecisionS(const SimulationInputs& in) {
  const Scenario& s = in.scenario;
  const double send_all_s = static_cast<double>(s.tokens_per_gpu) * s.top_k * ShapeOf(s).dispatch_token_bytes /
                            LinkFloorBps(in.topology);
  return std::clamp(1e-4 * send_all_s, 1e-10, 1e-5);
}

double PredictedSimGridCpuS(double flows_per_step, int steps) {
  constexpr double kFlows = 8064, kSeconds = 1.49, kExponent = 1.93;
  return steps * kSeconds * std::pow(std::max(flows_per_step, 0.0) / kFlows, kExponent);
}

double PredictedMaxMinCpuS(double flows_per_step, int steps) {
  constexpr double kFlows = 32512, kSeconds = 4.45, kExponent = 1.53;
  return steps * kSeconds * std::pow(std::max(flows_per_step, 0.0) / kFlows, kExponent);
}

EngineRun RunSteps(const SimulationInputs& in, int units, const std::function<StepWork(int unit)>& make_step,
                   const std::function<void(int unit, const StepWork&, const StepTimeline&)>& on_step) {
  const Scenario& s = in.scenario;
  const SmBudget sm = SmBudgetOf(in);
  EngineRun run;
  run.engine = s.engine;
  // The first unit of step 0 with flows says how long SimGrid, and the exact fast path,
  // would take per unit (a flow striped over a GPU's NICs is one transfer per stripe; a
  // backward pass has the forward's flows; dense layers before it have none); the units
  // built to find it are kept, not rebuilt. Only step 0's (units / steps: later steps may
  // add a rebalance), so that no unit is built before the units of an earlier step are
  // received.
  std::deque<StepWork> built;
  double flows = 0;
  std::optional<FabricLayout> layout;  // the fast path's (and its flow count's); SimGrid builds its platform
  if (s.engine != Engine::kSimGrid) {
    layout.emplace(in.topology, s.gpus, sm);
    const int step_zero_units = std::max(1, units / std::max(1, s.steps));
    while (flows == 0 && static_cast<int>(built.size()) < step_zero_units) {
      built.push_back(make_step(static_cast<int>(built.size())));
      for (const std::vector<Flow>* phase : {&built.back().dispatch, &built.back().combine})
        for (const Flow& f : *phase) flows += layout->Stripes(f.src, f.dst, f.via_fabric);
    }
  }
  const int prebuilt = static_cast<int>(built.size());
  std::string why;
  const auto turning = std::find_if(s.faults.begin(), s.faults.end(), TurnsRoutes);
  if (s.engine == Engine::kAuto && turning != s.faults.end()) {
    run.engine = Engine::kAnalytic;
    why = "engine auto chose the fast path: '" + turning->text +
          "' is a part down inside the fabric, and SimGrid's fat-tree routes do not turn around it";
  } else if (s.engine == Engine::kAuto) {
    const double predicted_s = PredictedSimGridCpuS(flows, units);
    run.engine = predicted_s <= kAutoSimGridLimitS ? Engine::kSimGrid : Engine::kAnalytic;
    const std::string times = units == s.steps ? StrFormat("step x %d steps", s.steps)
                                               : StrFormat("unit x %d units (a pass of a layer each)", units);
    why = StrFormat("engine auto chose %s: a SimGrid replay of %.0f flows per %s would take about "
                    "%.3g s of CPU (%s %.0f s)",
                    run.engine == Engine::kSimGrid ? "SimGrid" : "the fast path", flows, times.c_str(), predicted_s,
                    run.engine == Engine::kSimGrid ? "at most" : "over", kAutoSimGridLimitS);
  }
  auto step_work = [&](int step) {
    if (step < prebuilt) {  // in order: the front one is `step`
      StepWork work = std::move(built.front());
      built.pop_front();
      return work;
    }
    return make_step(step);
  };
  auto describe = [&](const std::string& model) { return why.empty() ? model : why + "; " + model; };
  if (run.engine == Engine::kAnalytic) {
    // Exact max-min where it is predicted to take seconds, processor sharing beyond.
    const double max_min_s = PredictedMaxMinCpuS(flows, units);
    const SharingSolver solver =
        s.sharing == Sharing::kMaxMin || (s.sharing == Sharing::kAuto && max_min_s <= kMaxMinLimitS)
            ? SharingSolver::kMaxMin
            : SharingSolver::kProcessorSharing;
    const std::string approximation =
        LinksMayBindTogether(in, *layout)
            ? "it approximates max-min where flows bind on different links, as they may here (links inside the "
              "fabric oversubscribed, or a part slowed or down: at 4:1, 2.4% off on the step and 3.7% on a GPU, "
              "BENCHMARKS.md), where --sharing max-min is exact"
            : "it approximates max-min where flows bind on different links";
    std::string model;
    if (s.sharing != Sharing::kAuto) {
      model = solver == SharingSolver::kMaxMin ? "analytic max-min fair sharing, exact (sharing max-min)"
                                               : StrFormat("analytic per-link processor sharing (sharing "
                                                           "processor-sharing): %s", approximation.c_str());
    } else if (solver == SharingSolver::kMaxMin) {
      model = StrFormat("analytic max-min fair sharing, exact (about %.3g s of CPU, at most %.0f s)", max_min_s,
                        kMaxMinLimitS);
    } else {
      model = StrFormat("analytic per-link processor sharing, since exact max-min would take about %.3g s of CPU "
                        "(over %.0f s): %s",
                        max_min_s, kMaxMinLimitS, approximation.c_str());
    }
    for (int unit = 0; unit < units; ++unit) {
      const StepWork work = step_work(unit);
      on_step(unit, work, AnalyticReplayStep(*layout, work, solver, EndPrecisionS(in)));
    }
    run.description = describe(model + "; route latency added per flow");
    return run;
  }
  int argc = 1;
  char name[] = "epsim";
  char* argv[] = {name, nullptr};
  simgrid::s4u::Engine engine(&argc, argv);
  xbt_log_control_set("root.thres:warning");
  Platform::ConfigurePrecision(engine, EndPrecisionS(in));
  run.description = describe(Platform::ConfigureNetworkModel(engine, s.gpus));
  Platform platform(in.topology, s.gpus, sm);
  ReplaySteps(engine, platform, units, step_work, on_step);
  return run;
}

}  // namespace epsim
