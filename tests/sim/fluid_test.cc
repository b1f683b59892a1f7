// epsim tests: per-link processor sharing against hand-computed schedules.
#include <gtest/gtest.h>

#include "sim/engine/fluid.h"

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

}  // namespace
}  // namespace epsim
