// epsim tests: what an all-to-all call costs besides moving bytes over links (the per-call
// overhead, the barrier, the SMs that move the bytes: sim/traffic/comm_model.h), against
// closed forms, on both engines: the SimGrid replay and the analytic fast path.
#include <gtest/gtest.h>

#include <algorithm>

#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include "sim/config/topology.h"
#include "sim/engine/analytic_replay.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/platform.h"
#include "sim/engine/replay.h"
#include "tests/sim/fork_runner.h"

namespace epsim {
namespace {

// One NVSwitch node with round numbers: 400 GB/s ports, 2 us through the switch.
constexpr char kNode[] = R"(
name: test-node
gpu: h100
nodes: 1
gpus_per_node: 8
scale_up: {domain_gpus: 8, bandwidth: 400GB/s, latency: 2us}
)";
constexpr int kGpus = 8;
constexpr double kPortBps = 400e9, kSwitchS = 2e-6;

StepWork Work(std::vector<Flow> dispatch, CallCost cost, std::vector<double> route_s = {}) {
  StepWork w;
  w.dispatch = std::move(dispatch);
  w.dispatch_cost = {std::move(cost)};
  w.route_s = route_s.empty() ? std::vector<double>(kGpus, 0) : std::move(route_s);
  w.expert_s.assign(kGpus, 0);
  w.reduce_s.assign(kGpus, 0);
  return w;
}

CallCost Overhead(double seconds, bool barrier = false) {
  CallCost c;
  c.barrier = barrier;
  c.overhead_s.assign(kGpus, seconds);
  return c;
}

std::vector<Flow> AllToAll(double bytes) {
  std::vector<Flow> flows;
  for (int s = 0; s < kGpus; ++s)
    for (int d = 0; d < kGpus; ++d)
      if (s != d) flows.push_back({s, d, bytes});
  return flows;
}

struct Ends {
  std::vector<double> simgrid, analytic;  // dispatch end per GPU
};

Ends DispatchEnds(const StepWork& work, SmBudget sm = {}) {
  const Topology topo = ParseTopology(kNode, "node.yaml");
  Ends ends;
  ends.simgrid = testing::RunInChild([&]() {
    int argc = 1;
    char name[] = "comm_cost_test";
    char* argv[] = {name, nullptr};
    simgrid::s4u::Engine engine(&argc, argv);
    xbt_log_control_set("root.thres:warning");
    Platform::ConfigureNetworkModel(engine, kGpus);
    engine.set_config("surf/precision:1e-9");
    Platform platform(topo, kGpus, sm);
    std::vector<double> result;
    ReplaySteps(engine, platform, 1, [&](int) { return work; },
                [&](int, const StepWork&, const StepTimeline& t) {
                  for (const GpuTimeline& g : t.gpus) result.push_back(g.dispatch_end);
                });
    return result;
  });
  for (const GpuTimeline& g : AnalyticReplayStep(FabricLayout(topo, kGpus, sm), work).gpus)
    ends.analytic.push_back(g.dispatch_end);
  return ends;
}

void ExpectAll(const Ends& ends, const std::vector<double>& expected, double tolerance) {
  ASSERT_EQ(ends.simgrid.size(), expected.size());
  ASSERT_EQ(ends.analytic.size(), expected.size());
  for (size_t g = 0; g < expected.size(); ++g) {
    EXPECT_NEAR(ends.simgrid[g], expected[g], tolerance * expected[g]) << "simgrid, gpu " << g;
    EXPECT_NEAR(ends.analytic[g], expected[g], tolerance * expected[g]) << "analytic, gpu " << g;
  }
}

// A call that moves nothing costs its overhead, nothing more.
TEST(CommCostTest, AnEmptyCallCostsItsOverhead) {
  ExpectAll(DispatchEnds(Work({}, Overhead(7e-6))), std::vector<double>(kGpus, 7e-6), 1e-9);
}

// A flow starts once both of its ends have paid their overhead (here GPU g pays g us);
// GPUs without flows leave when they have paid.
TEST(CommCostTest, AFlowStartsWhenBothEndsAreReady) {
  CallCost cost;
  for (int g = 0; g < kGpus; ++g) cost.overhead_s.push_back(g * 1e-6);
  const double bytes = 4e6;
  std::vector<double> expected;
  for (int g = 0; g < kGpus; ++g) expected.push_back(g * 1e-6);
  expected[1] = expected[5] = 5e-6 + bytes / kPortBps + kSwitchS;  // 1 -> 5 starts at 5 us
  const Ends ends = DispatchEnds(Work({{1, 5, bytes}}, cost));
  EXPECT_EQ(ends.simgrid[0], 0.0);
  EXPECT_EQ(ends.analytic[0], 0.0);
  expected.erase(expected.begin());
  ExpectAll({{ends.simgrid.begin() + 1, ends.simgrid.end()}, {ends.analytic.begin() + 1, ends.analytic.end()}},
            expected, 1e-6);
}

// All-to-all among GPUs 1-7 (GPU 0 has no flows) while GPU 0 enters the call 1 ms late.
// With a barrier (DeepEP's notify) no data moves before GPU 0 is in; without, GPUs 1-7 are
// done long before.
TEST(CommCostTest, ABarrierHoldsEveryGpuForTheLastToEnter) {
  std::vector<double> route(kGpus, 0);
  route[0] = 1e-3;
  std::vector<Flow> flows;
  const double bytes = 1e6, overhead = 6e-6;
  for (const Flow& f : AllToAll(bytes))
    if (f.src != 0 && f.dst != 0) flows.push_back(f);
  const double x = 6 * bytes / kPortBps + kSwitchS;
  std::vector<double> with_barrier(kGpus, 1e-3 + overhead + x), without(kGpus, overhead + x);
  with_barrier[0] = without[0] = 1e-3 + overhead;
  ExpectAll(DispatchEnds(Work(flows, Overhead(overhead, true), route)), with_barrier, 1e-6);
  ExpectAll(DispatchEnds(Work(flows, Overhead(overhead, false), route)), without, 1e-6);
}

// An SM budget below the port rate binds: 7 S out through 100 GB/s of send SMs, and a GPU's
// own tokens (a self flow of S, no link, no switch latency) through the same SMs.
TEST(CommCostTest, SmsBelowThePortRateBindTheirOwnTokensToo) {
  const double bytes = 8e6;
  const SmBudget sms{100e9, 100e9};
  ExpectAll(DispatchEnds(Work(AllToAll(bytes), Overhead(0)), sms),
            std::vector<double>(kGpus, 7 * bytes / 100e9 + kSwitchS), 0.01);
  std::vector<Flow> with_self = AllToAll(bytes);
  for (int g = 0; g < kGpus; ++g) with_self.push_back({g, g, bytes});
  ExpectAll(DispatchEnds(Work(with_self, Overhead(0)), sms), std::vector<double>(kGpus, 8 * bytes / 100e9 + kSwitchS),
            0.01);
  // Above the port rate the SMs do not bind: the port's 7 S / 400 GB/s (own tokens in
  // parallel, at the SMs' spare rate).
  ExpectAll(DispatchEnds(Work(AllToAll(bytes), Overhead(0)), {800e9, 800e9}),
            std::vector<double>(kGpus, 7 * bytes / kPortBps + kSwitchS), 0.01);
}

// The crossover: with 7 S to peers and S to itself, a GPU's send SMs carry 8 S and its
// port 7 S, so the call takes max(8 S / sm_rate, 7 S / port) + latency, SM-bound below
// sm_rate = 8/7 x 400 = 457 GB/s and link-bound above it.
TEST(CommCostTest, SmBoundBelowTheBudgetWhereSmsAndPortMeet) {
  const double bytes = 8e6;
  std::vector<Flow> flows = AllToAll(bytes);
  for (int g = 0; g < kGpus; ++g) flows.push_back({g, g, bytes});
  for (double sm_Bps : {300e9, 400e9, 440e9, 475e9, 600e9}) {
    const double expected = std::max(8 * bytes / sm_Bps, 7 * bytes / kPortBps) + kSwitchS;
    ExpectAll(DispatchEnds(Work(flows, Overhead(0)), {sm_Bps, sm_Bps}), std::vector<double>(kGpus, expected), 0.01);
  }
}

}  // namespace
}  // namespace epsim
