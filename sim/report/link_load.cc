// epsim report: per-link load of one step (see link_load.h).
#include "sim/report/link_load.h"

#include <algorithm>
#include <array>

#include "common/parallel.h"
#include "sim/engine/fluid.h"

namespace epsim {

std::vector<LinkStepRecord> LinkLoads(const FabricLayout& layout, int step, const StepWork& work,
                                      const StepTimeline& timeline) {
  struct Route {
    std::array<int, kMaxRouteLinks> links;
    double bytes;  // its stripe's
  };
  const int num_links = layout.num_links();
  // One route per stripe (a GPU with several NICs stripes its fabric flows over the ones that
  // are up), dispatch, combine, then the weight moves beside them, in flow order, routed on
  // the worker threads.
  const size_t dispatch = work.dispatch.size(), combine = dispatch + work.combine.size(),
               flows = combine + work.moves.size();
  auto flow = [&](size_t i) -> const Flow& {
    return i < dispatch ? work.dispatch[i] : i < combine ? work.combine[i - dispatch] : work.moves[i - combine];
  };
  auto when = [&](size_t i, const std::vector<double>& dispatch_times, const std::vector<double>& combine_times,
                  const std::vector<double>& moves_times) {
    return i < dispatch ? dispatch_times[i] : i < combine ? combine_times[i - dispatch] : moves_times[i - combine];
  };
  const std::vector<size_t> first_route = StripeOffsets(layout, flows, flow, work.link_down);
  std::vector<Route> routes(first_route.back());
  std::vector<double> starts(routes.size()), ends(routes.size());
  ParallelForRanges(flows, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const Flow& f = flow(i);
      const double start = when(i, timeline.dispatch_flow_start, timeline.combine_flow_start, timeline.moves_flow_start);
      const double arrival = when(i, timeline.dispatch_flow_end, timeline.combine_flow_end, timeline.moves_flow_end);
      size_t r = first_route[i];
      layout.ForEachStripe(f.src, f.dst, f.via_fabric, &work.link_down, [&](int s, int used) {
        routes[r] = {layout.RouteLinks(f.src, f.dst, f.via_fabric, s, &work.link_down), f.bytes / used};
        starts[r] = start;
        ends[r++] = arrival;
      });
    }
  });

  // Per link, its flows (offsets per link), then one sweep over their starts and arrivals
  // in time order: at equal times arrivals count before starts, so a flow that starts as
  // another arrives neither overlaps it nor joins its busy period.
  const FlowsByLink by_link = GroupByLink(routes, num_links, [](const Route& r) { return r.links; });
  std::vector<int> peak(num_links, 0);
  std::vector<double> busy(num_links, 0), bytes(num_links, 0);
  ForLinkRanges(by_link, [&](size_t begin, size_t end) {
    std::vector<double> link_starts, link_ends;
    for (size_t l = begin; l < end; ++l) {
      link_starts.clear();
      link_ends.clear();
      for (size_t k = by_link.first[l]; k < by_link.first[l + 1]; ++k) {
        link_starts.push_back(starts[by_link.flows[k]]);
        link_ends.push_back(ends[by_link.flows[k]]);
        bytes[l] += routes[by_link.flows[k]].bytes;
      }
      std::sort(link_starts.begin(), link_starts.end());
      std::sort(link_ends.begin(), link_ends.end());
      int in_flight = 0;
      double busy_since = 0;
      size_t next_end = 0;
      for (const double start : link_starts) {
        for (; next_end < link_ends.size() && link_ends[next_end] <= start; ++next_end)
          if (--in_flight == 0) busy[l] += link_ends[next_end] - busy_since;
        if (in_flight++ == 0) busy_since = start;
        peak[l] = std::max(peak[l], in_flight);
      }
      for (; next_end < link_ends.size(); ++next_end)
        if (--in_flight == 0) busy[l] += link_ends[next_end] - busy_since;
    }
  });
  std::vector<double> capacity = layout.LinkCapacities();
  for (const auto& [link, fraction] : work.link_rate) capacity[link] *= fraction;
  std::vector<LinkStepRecord> out;
  for (int l = 0; l < num_links; ++l) {
    if (bytes[l] <= 0) continue;
    LinkStepRecord r;
    r.step = step;
    r.link = l;
    r.capacity_Bps = capacity[l];
    r.bytes = bytes[l];
    r.load_s = bytes[l] / capacity[l];
    r.busy_s = busy[l];
    r.peak_flows = peak[l];
    out.push_back(r);
  }
  return out;
}

}  // namespace epsim
