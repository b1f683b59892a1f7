// epsim engine: per-link processor-sharing completion times (see fluid.h).
#include "sim/engine/fluid.h"

#include <algorithm>
#include <numeric>
#include <queue>
#include <utility>

namespace epsim {
namespace {

// Simulates one processor-sharing link. `members` are flow indices sorted by start time.
// Virtual time V is the service each active flow has received; it grows at C / n.
void SimulateLink(const std::vector<FluidFlow>& flows, const std::vector<int>& members,
                  double capacity, std::vector<double>& finish) {
  using Entry = std::pair<double, int>;  // (virtual finish, flow)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> active;
  double now = 0, virtual_time = 0;
  size_t next = 0;
  while (next < members.size() || !active.empty()) {
    const double next_start = next < members.size() ? flows[members[next]].start_s : 1e300;
    if (active.empty()) {
      now = next_start;
    } else {
      const double rate = capacity / active.size();  // virtual time per second
      const double next_finish = now + (active.top().first - virtual_time) / rate;
      if (next_finish <= next_start) {
        virtual_time = active.top().first;
        now = next_finish;
        const int f = active.top().second;
        active.pop();
        finish[f] = std::max(finish[f], now);
        continue;
      }
      virtual_time += (next_start - now) * rate;
      now = next_start;
    }
    const int f = members[next++];
    active.emplace(virtual_time + flows[f].bytes, f);
  }
}

}  // namespace

std::vector<double> ProcessorSharingCompletions(const std::vector<FluidFlow>& flows,
                                                const std::vector<double>& link_capacity_Bps) {
  std::vector<std::vector<int>> on_link(link_capacity_Bps.size());
  for (int f = 0; f < static_cast<int>(flows.size()); ++f)
    for (int link : flows[f].links)
      if (link >= 0) on_link[link].push_back(f);
  std::vector<double> finish(flows.size());
  for (size_t f = 0; f < flows.size(); ++f) finish[f] = flows[f].start_s;
  for (size_t link = 0; link < on_link.size(); ++link) {
    std::vector<int>& members = on_link[link];
    std::stable_sort(members.begin(), members.end(),
                     [&](int a, int b) { return flows[a].start_s < flows[b].start_s; });
    SimulateLink(flows, members, link_capacity_Bps[link], finish);
  }
  for (size_t f = 0; f < flows.size(); ++f) finish[f] += flows[f].latency_s;
  return finish;
}

}  // namespace epsim
