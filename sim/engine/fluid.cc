// epsim engine: per-link processor-sharing completion times (see fluid.h).
#include "sim/engine/fluid.h"

#include <algorithm>
#include <numeric>
#include <queue>
#include <utility>

namespace epsim {
namespace {

// A flow's place on one link: what that link's simulation reads, next to its neighbours
// (a flow's own record is far away in memory for most of its links).
struct LinkEntry {
  double start_s;
  double bytes;
  int index;  // its place among the link's entries in start order
  bool operator<(const LinkEntry& o) const {
    return start_s != o.start_s ? start_s < o.start_s : bytes != o.bytes ? bytes < o.bytes : index < o.index;
  }
};

// Simulates one processor-sharing link: writes when each of its flows leaves it into
// `leave` (by LinkEntry::index). Virtual time V is the service each active flow has
// received; it grows at C / n. Flows that start together with the same bytes leave together,
// so each such group is one heap entry of its size (an all-to-all's flows mostly are).
void SimulateLink(LinkEntry* entries, int count, double capacity, double* leave) {
  if (!std::is_sorted(entries, entries + count)) std::sort(entries, entries + count);
  struct Group {
    double virtual_finish;
    int first, count;  // its entries
    bool operator>(const Group& o) const {
      return virtual_finish != o.virtual_finish ? virtual_finish > o.virtual_finish : first > o.first;
    }
  };
  std::priority_queue<Group, std::vector<Group>, std::greater<Group>> active;
  double now = 0, virtual_time = 0;
  int flows_active = 0, next = 0;
  while (next < count || !active.empty()) {
    const double next_start = next < count ? entries[next].start_s : 1e300;
    if (active.empty()) {
      now = next_start;
    } else {
      const double rate = capacity / flows_active;  // virtual time per second
      const double next_finish = now + (active.top().virtual_finish - virtual_time) / rate;
      if (next_finish <= next_start) {
        const Group done = active.top();
        active.pop();
        virtual_time = done.virtual_finish;
        now = next_finish;
        for (int i = done.first; i < done.first + done.count; ++i) leave[entries[i].index] = now;
        flows_active -= done.count;
        continue;
      }
      virtual_time += (next_start - now) * rate;
      now = next_start;
    }
    int last = next + 1;
    while (last < count && entries[last].start_s == entries[next].start_s && entries[last].bytes == entries[next].bytes) ++last;
    active.push({virtual_time + entries[next].bytes, next, last - next});
    flows_active += last - next;
    next = last;
  }
}

}  // namespace

std::vector<double> ProcessorSharingCompletions(const std::vector<FluidFlow>& flows,
                                                const std::vector<double>& link_capacity_Bps) {
  const int n = static_cast<int>(flows.size());
  const size_t links = link_capacity_Bps.size();
  // Each link's entries contiguous (offsets per link), filled in flow order.
  std::vector<size_t> first(links + 1, 0);
  for (const FluidFlow& f : flows)
    for (const int link : f.links)
      if (link >= 0) ++first[link + 1];
  std::partial_sum(first.begin(), first.end(), first.begin());
  std::vector<LinkEntry> entries(first[links]);
  std::vector<size_t> place(first.begin(), first.end() - 1);
  for (const FluidFlow& f : flows) {
    for (const int link : f.links) {
      if (link < 0) continue;
      entries[place[link]] = {f.start_s, f.bytes, static_cast<int>(place[link] - first[link])};
      ++place[link];
    }
  }
  std::vector<double> leave(entries.size());
  for (size_t link = 0; link < links; ++link)
    SimulateLink(entries.data() + first[link], static_cast<int>(first[link + 1] - first[link]),
                 link_capacity_Bps[link], leave.data() + first[link]);
  // A flow completes when it has left its slowest link, then its latency (its entries
  // found again in the order they were filled).
  std::copy(first.begin(), first.end() - 1, place.begin());
  std::vector<double> finish(n);
  for (int f = 0; f < n; ++f) {
    double done = flows[f].start_s;
    for (const int link : flows[f].links)
      if (link >= 0) done = std::max(done, leave[place[link]++]);
    finish[f] = done + flows[f].latency_s;
  }
  return finish;
}

}  // namespace epsim
