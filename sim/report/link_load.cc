// epsim report: per-link load of one step (see link_load.h).
#include "sim/report/link_load.h"

#include <algorithm>
#include <array>
#include <limits>

#include "common/parallel.h"

namespace epsim {

std::vector<LinkStepRecord> LinkLoads(const FabricLayout& layout, int step, const StepWork& work,
                                      const StepTimeline& timeline) {
  // A stripe's start or arrival, with the links its route crosses.
  struct Event {
    double time_s;
    std::array<int, kMaxRouteLinks> links;
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
  const size_t routes = first_route.back();
  std::vector<Event> starts(routes), arrivals(routes);
  std::vector<double> stripe_bytes(routes);
  ParallelForRanges(flows, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const Flow& f = flow(i);
      const double start = when(i, timeline.dispatch_flow_start, timeline.combine_flow_start, timeline.moves_flow_start);
      const double arrival = when(i, timeline.dispatch_flow_end, timeline.combine_flow_end, timeline.moves_flow_end);
      size_t r = first_route[i];
      layout.ForEachStripe(f.src, f.dst, f.via_fabric, &work.link_down, [&](int s, int used) {
        const std::array<int, kMaxRouteLinks> links = layout.RouteLinks(f.src, f.dst, f.via_fabric, s, &work.link_down);
        starts[r] = {start, links};
        arrivals[r] = {arrival, links};
        stripe_bytes[r++] = f.bytes / used;
      });
    }
  });
  // Each link's bytes, added in flow order.
  std::vector<double> bytes(num_links, 0);
  for (size_t r = 0; r < routes; ++r)
    for (const int l : starts[r].links)
      if (l >= 0) bytes[l] += stripe_bytes[r];

  // One sweep over every start and arrival in time order, counting each link's flows in
  // flight: at equal times arrivals count before starts, so a flow that starts as another
  // arrives neither overlaps it nor joins its busy period. (Equal times in either list may
  // come in any order: the counts, peaks and busy times come out the same.) One sort of
  // each list costs far less than a sort of every link's flows, which cross up to six.
  auto by_time = [](const Event& a, const Event& b) { return a.time_s < b.time_s; };
  ParallelFor(2, [&](int list) {
    std::vector<Event>& events = list == 0 ? starts : arrivals;
    std::sort(events.begin(), events.end(), by_time);
  });
  std::vector<int> in_flight(num_links, 0), peak(num_links, 0);
  std::vector<double> busy(num_links, 0), busy_since(num_links, 0);
  size_t next_arrival = 0;
  auto arrive_until = [&](double time_s) {
    for (; next_arrival < routes && arrivals[next_arrival].time_s <= time_s; ++next_arrival)
      for (const int l : arrivals[next_arrival].links)
        if (l >= 0 && --in_flight[l] == 0) busy[l] += arrivals[next_arrival].time_s - busy_since[l];
  };
  for (const Event& start : starts) {
    arrive_until(start.time_s);
    for (const int l : start.links) {
      if (l < 0) continue;
      if (in_flight[l]++ == 0) busy_since[l] = start.time_s;
      peak[l] = std::max(peak[l], in_flight[l]);
    }
  }
  arrive_until(std::numeric_limits<double>::infinity());
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
