// epsim benchmark: the fast path on a full all-to-all (every GPU sends the same bytes to
// every other GPU), the collective that flow-level network simulators are usually compared
// on. Prints the flows, the fast path's wall time (routes, sharing solver, per-GPU totals:
// what AnalyticReplayStep does for one all-to-all), the all-to-all's time, and a bound to
// check it by: the busiest link's bytes at its rate (no schedule is faster; on a
// non-blocking fabric the all-to-all takes that plus the longest route's latency).
//   full_all_to_all TOPOLOGY.yaml GPUS BYTES_PER_PAIR [processor-sharing|max-min]
// (tools/bench/ladder.sh runs it for BENCHMARKS.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "sim/config/topology.h"
#include "sim/engine/analytic_replay.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"

int main(int argc, char** argv) {
  using epsim::SharingSolver;
  const std::string solver_name = argc > 4 ? argv[4] : "processor-sharing";
  if ((argc != 4 && argc != 5) || (solver_name != "processor-sharing" && solver_name != "max-min")) {
    std::fprintf(stderr, "usage: full_all_to_all TOPOLOGY.yaml GPUS BYTES_PER_PAIR [processor-sharing|max-min]\n");
    return 2;
  }
  try {
    const std::string path = argv[1];
    const int gpus = std::stoi(argv[2]);
    const double bytes = std::stod(argv[3]);
    const int gpus_per_node = epsim::LoadTopology(path).gpus_per_node;
    if (gpus < 2 || gpus % gpus_per_node != 0 || !(bytes > 0)) {
      std::fprintf(stderr, "full_all_to_all: GPUS must be a multiple of %d (at least 2), BYTES_PER_PAIR > 0\n", gpus_per_node);
      return 2;
    }
    const epsim::Topology topology = epsim::LoadTopology(path, gpus / gpus_per_node);
    epsim::CheckGpusFit(topology, gpus, path, "GPUS");
    const epsim::FabricLayout layout(topology, gpus);
    epsim::StepWork work;
    work.route_s.assign(gpus, 0);
    work.expert_s.assign(gpus, 0);
    work.reduce_s.assign(gpus, 0);
    work.dispatch.reserve(static_cast<size_t>(gpus) * (gpus - 1));
    for (int src = 0; src < gpus; ++src)
      for (int dst = 0; dst < gpus; ++dst)
        if (src != dst) work.dispatch.push_back({src, dst, bytes});
    const SharingSolver solver = solver_name == "max-min" ? SharingSolver::kMaxMin : SharingSolver::kProcessorSharing;
    const auto begin = std::chrono::steady_clock::now();
    const epsim::StepTimeline timeline = epsim::AnalyticReplayStep(layout, work, solver);
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    std::vector<double> link_bytes(layout.num_links(), 0);
    double latency_s = 0;
    for (const epsim::Flow& f : work.dispatch) {
      const int stripes = layout.Stripes(f.src, f.dst);
      for (int s = 0; s < stripes; ++s) {
        for (const int l : layout.RouteLinks(f.src, f.dst, false, s))
          if (l >= 0) link_bytes[l] += f.bytes / stripes;
        latency_s = std::max(latency_s, layout.RouteLatencyS(f.src, f.dst, false, s));
      }
    }
    const std::vector<double> capacity = layout.LinkCapacities();
    double bound_s = 0;
    for (size_t l = 0; l < capacity.size(); ++l) bound_s = std::max(bound_s, link_bytes[l] / capacity[l]);
    std::printf("%s: %d GPUs, %zu flows of %.0f bytes, %s: %.3f s, all-to-all %.6f ms, busiest link %.6f ms + longest route %.6f ms\n",
                topology.name.c_str(), gpus, work.dispatch.size(), bytes, solver_name.c_str(), wall_s,
                timeline.step_time_s * 1e3, bound_s * 1e3, latency_s * 1e3);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "full_all_to_all: %s\n", e.what());
    return 2;
  }
  return 0;
}
