// epsim engine: per-link processor-sharing completion times (see fluid.h).
#include "sim/engine/fluid.h"

#include <algorithm>
#include <atomic>
#include <queue>
#include <utility>

namespace epsim {
namespace {

// A flow on one link, as that link's simulation reads it.
struct LinkEntry {
  double start_s;
  double bytes;
  int index;  // its place among the link's flows
  // Start order, then bytes, so that flows leaving together sit side by side (in any order
  // among themselves: they get the same times).
  bool operator<(const LinkEntry& o) const { return start_s < o.start_s || (start_s == o.start_s && bytes < o.bytes); }
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
  const FlowsByLink by_link = GroupByLink(flows, links, [](const FluidFlow& f) { return f.links; });
  // A flow completes when it has left its slowest link, then its latency. Links run on
  // several threads; the latest leave wins whichever thread writes last.
  std::vector<std::atomic<double>> finish(n);
  for (int f = 0; f < n; ++f) finish[f].store(flows[f].start_s, std::memory_order_relaxed);
  ForLinkRanges(by_link, [&](size_t begin, size_t end) {
    std::vector<LinkEntry> entries;
    std::vector<double> leave;
    for (size_t link = begin; link < end; ++link) {
      const int count = static_cast<int>(by_link.first[link + 1] - by_link.first[link]);
      const int* members = by_link.flows.data() + by_link.first[link];
      entries.resize(count);
      leave.resize(count);
      for (int i = 0; i < count; ++i) entries[i] = {flows[members[i]].start_s, flows[members[i]].bytes, i};
      SimulateLink(entries.data(), count, link_capacity_Bps[link], leave.data());
      for (int i = 0; i < count; ++i) {
        std::atomic<double>& latest = finish[members[i]];
        double seen = latest.load(std::memory_order_relaxed);
        while (leave[i] > seen && !latest.compare_exchange_weak(seen, leave[i], std::memory_order_relaxed)) {
        }
      }
    }
  });
  std::vector<double> out(n);
  for (int f = 0; f < n; ++f) out[f] = finish[f].load(std::memory_order_relaxed) + flows[f].latency_s;
  return out;
}

}  // namespace epsim
