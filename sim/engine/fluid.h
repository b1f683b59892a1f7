// epsim engine: an analytic estimate of flow completion times under fair sharing, for scale.
//
// Each link is treated as a processor-sharing server: its active flows share its capacity
// equally; flows may start at different times. A flow's completion is the latest of its
// completions on the links it crosses, plus its route latency. Exact for one bottleneck
// link (and so for uniform all-to-alls and incast); an approximation of SimGrid's
// max-min sharing when flows are bound on different links. O(F log F) for F flows.
#ifndef EPSIM_SIM_ENGINE_FLUID_H_
#define EPSIM_SIM_ENGINE_FLUID_H_

#include <array>
#include <vector>

namespace epsim {

// The most links a fluid flow crosses.
constexpr int kFluidLinks = 6;

struct FluidFlow {
  double bytes = 0;
  double start_s = 0;
  double latency_s = 0;
  std::array<int, kFluidLinks> links = {-1, -1, -1, -1, -1, -1};  // link indices; -1 = unused
};

// Completion time (start + transfer + latency) of every flow.
std::vector<double> ProcessorSharingCompletions(const std::vector<FluidFlow>& flows,
                                                const std::vector<double>& link_capacity_Bps);

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_FLUID_H_
