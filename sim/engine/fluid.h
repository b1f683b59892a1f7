// epsim engine: an analytic estimate of flow completion times under fair sharing, for scale.
//
// Each link is treated as a processor-sharing server: its active flows share its capacity
// equally; flows may start at different times. A flow's completion is the latest of its
// completions on the links it crosses, plus its route latency. Exact for one bottleneck
// link (and so for uniform all-to-alls and incast); an approximation of SimGrid's
// max-min sharing when flows are bound on different links. O(F log F) for F flows.
#ifndef EPSIM_SIM_ENGINE_FLUID_H_
#define EPSIM_SIM_ENGINE_FLUID_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "common/parallel.h"

namespace epsim {

// The most links a fluid flow crosses.
constexpr int kFluidLinks = 6;

struct FluidFlow {
  double bytes = 0;
  double start_s = 0;
  double latency_s = 0;
  std::array<int, kFluidLinks> links = {-1, -1, -1, -1, -1, -1};  // link indices; -1 = unused
};

// Each link's flows, contiguous and in flow order: flows[first[l] .. first[l + 1]) cross
// link l. Built in two passes over the routes (count, then place), so that work per link
// reads its flows from one place.
struct FlowsByLink {
  std::vector<size_t> first;  // one per link, and the end
  std::vector<int> flows;
};

// `links_of(item)`: the links item i crosses (-1 = unused entry).
template <typename Item, typename LinksOf>
FlowsByLink GroupByLink(const std::vector<Item>& items, size_t num_links, LinksOf links_of) {
  FlowsByLink by_link;
  by_link.first.assign(num_links + 1, 0);
  for (const Item& item : items)
    for (const int link : links_of(item))
      if (link >= 0) ++by_link.first[link + 1];
  for (size_t l = 0; l < num_links; ++l) by_link.first[l + 1] += by_link.first[l];
  by_link.flows.resize(by_link.first[num_links]);
  std::vector<size_t> place(by_link.first.begin(), by_link.first.end() - 1);
  for (size_t i = 0; i < items.size(); ++i)
    for (const int link : links_of(items[i]))
      if (link >= 0) by_link.flows[place[link]++] = static_cast<int>(i);
  return by_link;
}

// Calls body(begin, end) for consecutive ranges [begin, end) of links, each with about the
// same number of flows, on the worker threads (common/parallel.h). `body` may write only to
// its own links' entries (and must combine per-flow results order-free).
template <typename Body>
void ForLinkRanges(const FlowsByLink& by_link, Body body) {
  const size_t links = by_link.first.size() - 1;
  const int parts = RangesFor(links);  // a few per thread: one crowded link holds up none
  std::vector<size_t> bound(parts + 1, links);
  bound[0] = 0;
  for (int p = 1; p < parts; ++p) {
    const size_t target = by_link.flows.size() * p / parts;
    bound[p] = static_cast<size_t>(std::lower_bound(by_link.first.begin(), by_link.first.end() - 1, target) -
                                   by_link.first.begin());
    bound[p] = std::max(bound[p], bound[p - 1]);
  }
  ParallelFor(parts, [&](int p) { body(bound[p], bound[p + 1]); });
}

// Completion time (start + transfer + latency) of every flow.
std::vector<double> ProcessorSharingCompletions(const std::vector<FluidFlow>& flows,
                                                const std::vector<double>& link_capacity_Bps);

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_FLUID_H_
