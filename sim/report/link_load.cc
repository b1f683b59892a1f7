// epsim report: per-link load of one step (see link_load.h).
#include "sim/report/link_load.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <tuple>

namespace epsim {

std::vector<LinkStepRecord> LinkLoads(const FabricLayout& layout, int step, const StepWork& work,
                                      const StepTimeline& timeline) {
  struct Route {
    std::array<int, kMaxRouteLinks> links;
  };
  std::vector<Route> routes;
  std::vector<double> starts, ends;
  const int num_links = layout.num_links();
  std::vector<double> bytes(num_links, 0);
  auto add = [&](const std::vector<Flow>& flows, const std::vector<double>& start, const std::vector<double>& end) {
    for (size_t i = 0; i < flows.size(); ++i) {
      const Flow& f = flows[i];
      const int stripes = layout.Stripes(f.src, f.dst, f.via_fabric);
      for (int s = 0; s < stripes; ++s) {  // a GPU with several NICs stripes its fabric flows
        const Route r{layout.RouteLinks(f.src, f.dst, f.via_fabric, s, &work.link_down)};
        for (const int l : r.links)
          if (l >= 0) bytes[l] += f.bytes / stripes;
        routes.push_back(r);
        starts.push_back(start[i]);
        ends.push_back(end[i]);
      }
    }
  };
  add(work.dispatch, timeline.dispatch_flow_start, timeline.dispatch_flow_end);
  add(work.combine, timeline.combine_flow_start, timeline.combine_flow_end);

  // One sweep over every start and arrival in time order: per link, the flows in flight.
  // (time, 0 = arrival / 1 = start, flow): a total order, so the sweep is deterministic.
  std::vector<std::tuple<double, int, int>> events;
  events.reserve(2 * routes.size());
  for (size_t i = 0; i < routes.size(); ++i) {
    events.emplace_back(starts[i], 1, static_cast<int>(i));
    events.emplace_back(ends[i], 0, static_cast<int>(i));
  }
  std::sort(events.begin(), events.end());
  std::vector<int> in_flight(num_links, 0), peak(num_links, 0);
  std::vector<double> busy(num_links, 0), busy_since(num_links, 0);
  for (const auto& [time, is_start, flow] : events) {
    for (const int l : routes[flow].links) {
      if (l < 0) continue;
      if (is_start) {
        if (in_flight[l]++ == 0) busy_since[l] = time;
        peak[l] = std::max(peak[l], in_flight[l]);
      } else if (--in_flight[l] == 0) {
        busy[l] += time - busy_since[l];
      }
    }
  }
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
