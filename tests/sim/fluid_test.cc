// epsim tests: per-link processor sharing and exact max-min sharing against hand-computed
// schedules, and both against plain references (rates from scratch at every event) on
// random instances.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>

#include "common/parallel.h"
#include "sim/engine/fluid.h"
#include "sim/engine/max_min.h"

namespace epsim {
namespace {

FluidFlow On(int link, double bytes, double start = 0, double latency = 0) {
  FluidFlow f;
  f.bytes = bytes;
  f.start_s = start;
  f.latency_s = latency;
  f.links = {link, -1, -1, -1, -1, -1};
  return f;
}

TEST(FluidTest, EqualFlowsShareOneLink) {
  // Three flows of 10 bytes on a 10 B/s link: all end at 3 s.
  auto t = ProcessorSharingCompletions({On(0, 10), On(0, 10), On(0, 10)}, {10});
  for (double x : t) EXPECT_DOUBLE_EQ(x, 3.0);
}

TEST(FluidTest, SmallFlowLeavesFirstAndFreesBandwidth) {
  // 5 and 15 bytes on 10 B/s: both at 5 B/s until 1 s (small done), then 10 B/s for the
  // remaining 10 bytes: 2 s.
  auto t = ProcessorSharingCompletions({On(0, 5), On(0, 15)}, {10});
  EXPECT_DOUBLE_EQ(t[0], 1.0);
  EXPECT_DOUBLE_EQ(t[1], 2.0);
}

TEST(FluidTest, LateArrivalAndLatency) {
  // 20 bytes from 0 s, 10 bytes from 1 s, 10 B/s: alone until 1 s (10 left), then 5 B/s
  // each: the second ends at 3 s, the first at 3 s too. Latency adds to arrival.
  auto t = ProcessorSharingCompletions({On(0, 20), On(0, 10, 1.0, 0.5)}, {10});
  EXPECT_DOUBLE_EQ(t[0], 3.0);
  EXPECT_DOUBLE_EQ(t[1], 3.5);
}

TEST(FluidTest, IdleGapBetweenFlows) {
  auto t = ProcessorSharingCompletions({On(0, 10), On(0, 10, 5.0)}, {10});
  EXPECT_DOUBLE_EQ(t[0], 1.0);
  EXPECT_DOUBLE_EQ(t[1], 6.0);
}

TEST(FluidTest, CompletionIsTheSlowestLink) {
  // A flow over links 0 (fast, alone) and 1 (shared with a second flow of equal size).
  FluidFlow both = On(0, 10);
  both.links = {0, 1, -1, -1, -1, -1};
  auto t = ProcessorSharingCompletions({both, On(1, 10)}, {100, 10});
  EXPECT_DOUBLE_EQ(t[0], 2.0);
  EXPECT_DOUBLE_EQ(t[1], 2.0);
}

// The reference for per-link processor sharing: each link on its own, at every start and
// end every rate from scratch (capacity / flows in flight on it); a flow completes when the
// last of its links is through with it.
std::vector<double> PlainProcessorSharing(const std::vector<FluidFlow>& flows, const std::vector<double>& capacity) {
  const double inf = std::numeric_limits<double>::infinity();
  const size_t n = flows.size();
  std::vector<double> end(n);
  for (size_t f = 0; f < n; ++f) end[f] = flows[f].start_s;
  for (size_t l = 0; l < capacity.size(); ++l) {
    std::vector<double> left(n, 0);
    std::vector<char> on(n, 0), started(n, 0), done(n, 0);
    for (size_t f = 0; f < n; ++f) {
      on[f] = std::count(flows[f].links.begin(), flows[f].links.end(), static_cast<int>(l)) > 0;
      left[f] = flows[f].bytes;
    }
    double now = 0;
    while (true) {
      int active = 0;
      for (size_t f = 0; f < n; ++f) active += on[f] && started[f] && !done[f];
      double next = inf;
      for (size_t f = 0; f < n; ++f) {
        if (!on[f]) continue;
        if (!started[f]) next = std::min(next, flows[f].start_s);
        else if (!done[f]) next = std::min(next, now + left[f] * active / capacity[l]);
      }
      if (next == inf) break;
      for (size_t f = 0; f < n; ++f) {
        if (!on[f]) continue;
        if (started[f] && !done[f]) {
          left[f] -= capacity[l] / active * (next - now);
          if (left[f] <= 1e-9 * flows[f].bytes) {
            done[f] = 1;
            end[f] = std::max(end[f], next);
          }
        }
        if (!started[f] && flows[f].start_s <= next) started[f] = 1;
      }
      now = next;
    }
  }
  for (size_t f = 0; f < n; ++f) end[f] += flows[f].latency_s;
  return end;
}

// A random instance: `links` links of 1-10 B/s and `count` flows, each over 1-4 distinct
// links, its bytes and start from bytes(rng) and start(rng), its latency 0, 0.01 or 0.02 s.
struct Instance {
  std::vector<FluidFlow> flows;
  std::vector<double> capacity;
};
template <typename Bytes, typename Start>
Instance RandomInstance(std::mt19937& rng, int links, int count, Bytes bytes, Start start) {
  Instance in;
  in.capacity.resize(links);
  for (double& c : in.capacity) c = std::uniform_real_distribution<double>(1, 10)(rng);
  in.flows.resize(count);
  for (FluidFlow& f : in.flows) {
    f.bytes = bytes(rng);
    f.start_s = start(rng);
    f.latency_s = 0.01 * (rng() % 3);
    const int hops = 1 + static_cast<int>(rng() % std::min(4, links));
    for (int h = 0; h < hops; ++h) {
      int l = static_cast<int>(rng() % links);
      while (std::count(f.links.begin(), f.links.begin() + h, l)) l = (l + 1) % links;
      f.links[h] = l;
    }
  }
  return in;
}

// Random instances where many flows start together with the same bytes (as an all-to-all's
// do, which the solver takes as one group per link) and others do not.
TEST(FluidTest, MatchesPerLinkSharingFromScratchOnRandomFlows) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const Instance in = RandomInstance(
        rng, 2 + trial % 6, 4 + trial * 3,
        [](std::mt19937& r) { return r() % 2 ? 4.0 * (1 + r() % 3) : std::uniform_real_distribution<double>(0.5, 20)(r); },
        [](std::mt19937& r) { return r() % 2 ? 0.5 * (r() % 3) : std::uniform_real_distribution<double>(0, 5)(r); });
    const std::vector<double> want = PlainProcessorSharing(in.flows, in.capacity);
    const std::vector<double> got = ProcessorSharingCompletions(in.flows, in.capacity);
    for (size_t f = 0; f < want.size(); ++f) EXPECT_NEAR(got[f], want[f], 1e-9 * want[f]) << "trial " << trial << " flow " << f;
  }
}

// Links are simulated on the worker threads; any count gives the same times, bit for bit.
TEST(FluidTest, AnyThreadCountGivesTheSameTimes) {
  std::mt19937 rng(12);
  const Instance in = RandomInstance(
      rng, 300, 20000, [](std::mt19937& r) { return 4.0 * (1 + r() % 5); },
      [](std::mt19937& r) { return 0.5 * (r() % 4); });
  SetWorkerThreads(1);
  const std::vector<double> serial = ProcessorSharingCompletions(in.flows, in.capacity);
  const std::vector<double> want = PlainProcessorSharing(in.flows, in.capacity);
  for (size_t f = 0; f < want.size(); ++f) ASSERT_NEAR(serial[f], want[f], 1e-9 * want[f]) << "flow " << f;
  for (const int threads : {2, 3, 8}) {
    SetWorkerThreads(threads);
    EXPECT_EQ(ProcessorSharingCompletions(in.flows, in.capacity), serial) << threads << " threads";
  }
  SetWorkerThreads(Cores());
}

// Max-min on one link is processor sharing: the schedules above again.
TEST(MaxMinTest, OneLinkIsProcessorSharing) {
  for (const auto& [flows, capacity] :
       std::vector<std::pair<std::vector<FluidFlow>, std::vector<double>>>{
           {{On(0, 10), On(0, 10), On(0, 10)}, {10}},
           {{On(0, 5), On(0, 15)}, {10}},
           {{On(0, 20), On(0, 10, 1.0, 0.5)}, {10}},
           {{On(0, 10), On(0, 10, 5.0)}, {10}}}) {
    const std::vector<double> ps = ProcessorSharingCompletions(flows, capacity);
    const std::vector<double> mm = MaxMinCompletions(flows, capacity);
    ASSERT_EQ(ps.size(), mm.size());
    for (size_t i = 0; i < ps.size(); ++i) EXPECT_NEAR(mm[i], ps[i], 1e-12) << i;
  }
}

// Where the two differ: A crosses links 0 (10 B/s, with B) and 1 (2 B/s, with C). Max-min:
// link 1 fixes A and C at 1 B/s, B takes the 9 B/s A leaves on link 0: 50 bytes in 50/9 s;
// A and C move 10 bytes each in 10 s. Per-link processor sharing gives B only half of link
// 0 until A's 10 bytes are through there (2 s), then all of it: 2 + 40/10 = 6 s.
TEST(MaxMinTest, EndsWithinThePrecisionAreOneEvent) {
  // One link of 10 B/s, 10 B and 10.001 B from 0: each at 5 B/s, the first leaves at 2 s and
  // the second 0.001 B later at the full 10 B/s, at 2.0001 s. With a precision of 1 ms both
  // leave at 2 s (as SimGrid completes them); with 10 us the second still leaves on its own.
  const std::vector<FluidFlow> flows = {On(0, 10), On(0, 10.001)};
  const std::vector<double> exact = MaxMinCompletions(flows, {10});
  EXPECT_NEAR(exact[0], 2.0, 1e-12);
  EXPECT_NEAR(exact[1], 2.0001, 1e-12);
  const std::vector<double> coarse = MaxMinCompletions(flows, {10}, 1e-3);
  EXPECT_NEAR(coarse[0], 2.0, 1e-12);
  EXPECT_NEAR(coarse[1], 2.0, 1e-12);
  EXPECT_EQ(MaxMinCompletions(flows, {10}, 1e-5), exact);
}

TEST(MaxMinTest, AFlowBoundElsewhereLeavesItsShareToTheOthers) {
  FluidFlow a = On(0, 10);
  a.links = {0, 1, -1, -1, -1, -1};
  const std::vector<FluidFlow> flows = {a, On(0, 50), On(1, 10)};
  const std::vector<double> mm = MaxMinCompletions(flows, {10, 2});
  EXPECT_NEAR(mm[0], 10.0, 1e-12);
  EXPECT_NEAR(mm[1], 50.0 / 9, 1e-12);
  EXPECT_NEAR(mm[2], 10.0, 1e-12);
  EXPECT_NEAR(ProcessorSharingCompletions(flows, {10, 2})[1], 6.0, 1e-12);
}

// The reference: at every start and end, every rate from scratch by progressive filling.
std::vector<double> PlainMaxMin(const std::vector<FluidFlow>& flows, const std::vector<double>& capacity) {
  const double inf = std::numeric_limits<double>::infinity();
  const size_t n = flows.size();
  std::vector<double> left(n), rate(n, 0), end(n, 0);
  std::vector<char> started(n, 0), done(n, 0);
  for (size_t f = 0; f < n; ++f) left[f] = flows[f].bytes;
  double now = 0;
  while (true) {
    // Rates of the flows in flight.
    std::vector<char> fixed(n, 1);
    for (size_t f = 0; f < n; ++f) fixed[f] = !(started[f] && !done[f]);
    std::vector<double> residual = capacity;
    while (true) {
      double best = inf;
      int link = -1;
      for (size_t l = 0; l < capacity.size(); ++l) {
        int count = 0;
        for (size_t f = 0; f < n; ++f)
          if (!fixed[f] && std::count(flows[f].links.begin(), flows[f].links.end(), static_cast<int>(l))) ++count;
        if (count > 0 && residual[l] / count < best) {
          best = residual[l] / count;
          link = static_cast<int>(l);
        }
      }
      if (link < 0) break;
      for (size_t f = 0; f < n; ++f) {
        if (fixed[f] || !std::count(flows[f].links.begin(), flows[f].links.end(), link)) continue;
        fixed[f] = 1;
        rate[f] = best;
        for (const int l : flows[f].links)
          if (l >= 0) residual[l] -= best;
      }
    }
    double next = inf;
    for (size_t f = 0; f < n; ++f) {
      if (!started[f]) next = std::min(next, flows[f].start_s);
      else if (!done[f]) next = std::min(next, now + left[f] / rate[f]);
    }
    if (next == inf) break;
    for (size_t f = 0; f < n; ++f) {
      if (started[f] && !done[f]) {
        left[f] -= rate[f] * (next - now);
        if (left[f] <= 1e-9 * flows[f].bytes) {
          done[f] = 1;
          end[f] = next;
        }
      }
      if (!started[f] && flows[f].start_s <= next) started[f] = 1;
    }
    now = next;
  }
  for (size_t f = 0; f < n; ++f) end[f] += flows[f].latency_s;
  return end;
}

TEST(MaxMinTest, MatchesProgressiveFillingFromScratchOnRandomFlows) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    // Some equal sizes and start times, so that events coincide.
    const Instance in = RandomInstance(
        rng, 3 + trial % 8, 5 + trial * 2,
        [](std::mt19937& r) { return 1 + static_cast<double>(r() % 4) * std::uniform_real_distribution<double>(0.5, 20)(r); },
        [](std::mt19937& r) { return r() % 3 == 0 ? 0.0 : std::uniform_real_distribution<double>(0, 5)(r); });
    const std::vector<double> want = PlainMaxMin(in.flows, in.capacity);
    const std::vector<double> got = MaxMinCompletions(in.flows, in.capacity);
    for (size_t f = 0; f < want.size(); ++f) EXPECT_NEAR(got[f], want[f], 1e-7 * want[f]) << "trial " << trial << " flow " << f;
  }
}

}  // namespace
}  // namespace epsim
