// epsim engine: exact max-min fair sharing of links among flows that start at given times
// (the fluid model SimGrid's CM02 solves), without SimGrid.
//
// Between events (a flow starts, a flow ends) every flow in flight gets its max-min fair
// rate, found by progressive filling: the link with the smallest fair share (capacity left
// / flows not yet fixed) fixes its flows at that share, which leaves the others' links, and
// so on. Two facts keep this fast: flows that start or end at one time are one event; and
// when flows end, only flows whose rate was at least the lowest of theirs can change (a
// link that filled up at a lower level carried none of them), so progressive filling
// restarts from that level over the flows fixed at or above it, kept in the order they were
// fixed. O(E x F x k) in the worst case for E events, F flows, k links per flow; much less
// when flows end at few distinct times or at the top of the order.
#ifndef EPSIM_SIM_ENGINE_MAX_MIN_H_
#define EPSIM_SIM_ENGINE_MAX_MIN_H_

#include <vector>

#include "sim/engine/fluid.h"

namespace epsim {

// Completion time (start + transfer under max-min sharing + latency) of every flow. A link
// of capacity 0 must carry no flow. Flows due to end within `precision_s` of the next end
// end with it, as SimGrid completes together the actions whose ends fall within its
// surf/precision (so that both solve at one precision; the engine passes SimGrid's); at 0,
// within a relative 1e-12.
std::vector<double> MaxMinCompletions(const std::vector<FluidFlow>& flows,
                                      const std::vector<double>& link_capacity_Bps, double precision_s = 0);

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_MAX_MIN_H_
