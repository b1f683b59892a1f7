// epsim tests: replay timings against closed forms, with the network model pinned.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>
#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include "sim/engine/analytic_replay.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/platform.h"
#include "sim/engine/replay.h"
#include "sim/config/topology.h"
#include "tests/sim/fork_runner.h"
#include "tests/sim/test_topologies.h"

namespace epsim {
namespace {

using testing::kTwoNodeTopology;

struct Phase {
  std::vector<double> dispatch_end;  // per GPU, seconds since step start
  std::vector<double> combine_end;
};

// Runs `body` in a child process (one SimGrid engine per process) with a fresh engine whose
// network model is pinned as the simulator pins it for `gpus` GPUs; returns body's numbers.
std::vector<double> InSimGridChild(int gpus, const std::function<std::vector<double>(simgrid::s4u::Engine&)>& body) {
  return testing::RunInChild([&]() {
    int argc = 1;
    char name[] = "replay_test";
    char* argv[] = {name, nullptr};
    simgrid::s4u::Engine engine(&argc, argv);
    xbt_log_control_set("root.thres:warning");
    Platform::ConfigureNetworkModel(engine, gpus);
    return body(engine);
  });
}

// Replays one step with the given flows and no compute; returns per-GPU phase ends.
Phase ReplayOnce(const Topology& topology, int gpus, const std::vector<Flow>& dispatch,
                 const std::vector<Flow>& combine, double expert_s = 0,
                 const std::vector<std::pair<int, double>>& link_rate = {}) {
  std::vector<double> out = InSimGridChild(gpus, [&](simgrid::s4u::Engine& engine) {
    engine.set_config("surf/precision:1e-9");
    Platform platform(topology, gpus);
    std::vector<double> result;
    ReplaySteps(
        engine, platform, 1,
        [&](int) {
          StepWork w;
          w.dispatch = dispatch;
          w.combine = combine;
          w.route_s.assign(gpus, 0);
          w.expert_s.assign(gpus, expert_s);
          w.reduce_s.assign(gpus, 0);
          w.link_rate = link_rate;
          for (const auto& [link, fraction] : link_rate) {  // at 0: down, as StepBuilder marks it
            if (fraction > 0) continue;
            w.link_down.resize(platform.layout().num_links(), 0);
            w.link_down[link] = 1;
          }
          return w;
        },
        [&](int, const StepWork&, const StepTimeline& t) {
          for (const GpuTimeline& g : t.gpus) result.push_back(g.dispatch_end);
          for (const GpuTimeline& g : t.gpus) result.push_back(g.combine_end);
        });
    return result;
  });
  Phase phase;
  phase.dispatch_end.assign(out.begin(), out.begin() + gpus);
  phase.combine_end.assign(out.begin() + gpus, out.end());
  return phase;
}

// Replays `work` as one step on SimGrid (in a child, at a precision of 1e-9); returns what
// `collect` takes from its timeline.
std::vector<double> ReplayWorkOnce(const Topology& topology, int gpus, const StepWork& work,
                                   const std::function<std::vector<double>(const StepTimeline&)>& collect) {
  return InSimGridChild(gpus, [&](simgrid::s4u::Engine& engine) {
    engine.set_config("surf/precision:1e-9");
    Platform platform(topology, gpus);
    std::vector<double> result;
    ReplaySteps(engine, platform, 1, [&](int) { return work; },
                [&](int, const StepWork&, const StepTimeline& t) { result = collect(t); });
    return result;
  });
}

std::vector<Flow> AllToAll(int gpus, double bytes) {
  std::vector<Flow> flows;
  for (int s = 0; s < gpus; ++s)
    for (int d = 0; d < gpus; ++d)
      if (s != d) flows.push_back({s, d, bytes});
  return flows;
}

// A three-tier fabric small enough to read: 8 nodes of 2 GPUs and 2 NICs, leaves of 2 NICs,
// spines with 4 leaf ports. Rail-optimized: 4 leaves per rail, 2 per pod, so pods of 4
// leaves (4 nodes), 2 spines per pod, 4 cores per spine plane: 8 cores.
constexpr char kThreeTierTopology[] = R"(
name: test-three-tier
gpu: h100
nodes: 8
gpus_per_node: 2
scale_up: {domain_gpus: 2, bandwidth: 400GB/s, latency: 2us}
scale_out:
  nics_per_node: 2
  nic_bandwidth: 400Gbps
  nic_latency: 1us
  switch_latency: 500ns
  leaf_down_ports: 2
  oversubscription: 1
  rail_optimized: true
  radix: 8
  tiers: 3
  spine_down_ports: 4
)";

// Over every pair of GPUs in different nodes whose NICs the fabric joins: routes of
// different lengths in the layout and SimGrid, layout links not one-to-one with SimGrid's
// (a routing difference would break the map), latencies off the route's switch count
// (NIC latency 1 us, switch 0.5 us), and the pairs seen.
std::vector<double> RouteMismatches(const Topology& topo, int gpus) {
  const FabricLayout layout(topo, gpus);
  return InSimGridChild(gpus, [&](simgrid::s4u::Engine&) {
    Platform platform(topo, gpus);
    std::map<int, std::string> ours_to_simgrid;
    std::map<std::string, int> simgrid_to_ours;
    std::vector<double> problems = {0, 0, 0, 0};  // length, many-to-one, latency, pairs seen
    for (int a = 0; a < gpus; ++a) {
      for (int b = 0; b < gpus; ++b) {
        if (topo.SameDomain(a, b) || !layout.HasRoute(a, b)) continue;
        const FlowPath path = platform.Path(a, b);
        std::vector<simgrid::s4u::Link*> links;
        double latency = 0;
        path.src->route_to(path.dst, links, &latency);
        std::vector<int> ours;
        for (const int l : layout.RouteLinks(a, b))
          if (l >= 0) ours.push_back(l);
        if (links.size() != ours.size()) {
          problems[0] += 1;
          continue;
        }
        for (size_t i = 0; i < ours.size(); ++i) {
          const std::string sg = links[i]->get_name();
          const auto [o, new_ours] = ours_to_simgrid.emplace(ours[i], sg);
          const auto [g, new_sg] = simgrid_to_ours.emplace(sg, ours[i]);
          if (o->second != sg || g->second != ours[i]) problems[1] += 1;
        }
        const int switches = static_cast<int>(ours.size()) - 1;  // links between NIC, switches, NIC
        if (std::abs(layout.RouteLatencyS(a, b) - (2 * 1e-6 + switches * 0.5e-6)) > 1e-12) problems[2] += 1;
        problems[3] += 1;
      }
    }
    return problems;
  });
}

// The layout's routes (which the fast path and links.csv use) are SimGrid's.
TEST(PlatformTest, ThreeTierRoutesAreSimGridsOneToOne) {
  for (bool rail_optimized : {true, false}) {
    std::string text = kThreeTierTopology;
    if (!rail_optimized) text.replace(text.find("rail_optimized: true"), 20, "rail_optimized: false");
    const Topology topo = ParseTopology(text, "three-tier.yaml");
    const FabricLayout layout(topo, 16);
    ASSERT_EQ(layout.shape().pods, 2);
    ASSERT_EQ(layout.shape().leaves_per_pod, 4);
    ASSERT_EQ(layout.shape().spines_per_leaf, 2);
    ASSERT_EQ(layout.shape().cores(), 8);
    const std::vector<double> out = RouteMismatches(topo, 16);
    EXPECT_EQ(out[0], 0) << "routes of different lengths, rail_optimized " << rail_optimized;
    EXPECT_EQ(out[1], 0) << "layout and SimGrid links not one-to-one, rail_optimized " << rail_optimized;
    EXPECT_EQ(out[2], 0) << "latency model off the route, rail_optimized " << rail_optimized;
    EXPECT_EQ(out[3], 16 * 14);
  }
}

// Two planes of 8 nodes x 4 NICs, leaves of 2 NICs: NICs 0 and 2 of every node in plane 0,
// 1 and 3 in plane 1; each plane 2 rails x 4 leaves = 8 leaves on 2 spines of its own
// (leaf 2 down, 2 up), no core. Routes within a plane are SimGrid's; none joins the planes:
// GPU 0 (node 0, NIC 0) reaches the NICs 0 and 2 of the 7 other nodes, 14 peers, so
// 32 x 14 pairs; a GPU two nodes away on its rail crosses a spine (3 switches).
TEST(PlatformTest, MultiPlaneRoutesAreSimGridsWithinEachPlane) {
  const Topology topo = ParseTopology(R"(
name: test-two-planes
gpu: h100
nodes: 8
gpus_per_node: 4
scale_up: {domain_gpus: 4, bandwidth: 400GB/s, latency: 2us}
scale_out:
  nics_per_node: 4
  nic_bandwidth: 400Gbps
  nic_latency: 1us
  switch_latency: 500ns
  leaf_down_ports: 2
  oversubscription: 1
  rail_optimized: true
  planes: 2
  radix: 8
)", "two-planes.yaml");
  const FabricLayout layout(topo, 32);
  ASSERT_EQ(layout.shape().pods, 2);
  ASSERT_EQ(layout.shape().leaves_per_pod, 8);
  ASSERT_EQ(layout.shape().spines_per_leaf, 2);
  ASSERT_EQ(layout.shape().cores(), 0);
  EXPECT_TRUE(layout.HasRoute(0, 6));    // node 1 NIC 2: plane 0
  EXPECT_FALSE(layout.HasRoute(0, 5));   // node 1 NIC 1: plane 1
  EXPECT_TRUE(topo.NoFabricRoute(0, 5));
  EXPECT_FALSE(topo.NoFabricRoute(0, 1));  // one node: NVLink
  EXPECT_DOUBLE_EQ(layout.RouteLatencyS(0, 4), 2e-6 + 1 * 0.5e-6);  // node 1, rail 0: one leaf
  EXPECT_DOUBLE_EQ(layout.RouteLatencyS(0, 8), 2e-6 + 3 * 0.5e-6);  // node 2, rail 0: the next leaf
  EXPECT_DOUBLE_EQ(layout.RouteLatencyS(0, 6), 2e-6 + 3 * 0.5e-6);  // node 1, rail 2: that rail's leaf
  EXPECT_THROW(layout.RouteLinks(0, 5), std::logic_error);
  const std::vector<double> out = RouteMismatches(topo, 32);
  EXPECT_EQ(out[0], 0) << "routes of different lengths";
  EXPECT_EQ(out[1], 0) << "layout and SimGrid links not one-to-one";
  EXPECT_EQ(out[2], 0) << "latency model off the route";
  EXPECT_EQ(out[3], 32 * 14);
}

// Closed forms on the three-tier fabric: 1, 3 and 5 switches within a leaf, a pod and across
// pods; a uniform all-to-all is NIC-bound (every tier non-blocking): each NIC carries S to
// each of the 14 GPUs of other nodes, 14 S at 50 GB/s, plus 5 switch traversals. Both engines.
// Each bundled fabric at a size whose two halves of nodes sit on different leaves (or pods,
// or racks): every GPU exchanges S bytes with its counterpart in the other half (GPU g and
// g + P / 2, the same local index, so the same rail and plane). Every flow crosses the
// bisection, so each takes S over its GPU's share of its node's NICs, over the cut's
// oversubscription: 2 between cloud-h100-2to1's pods, 1 elsewhere. S = 10 GB makes the
// route latencies (microseconds) negligible. Both engines.
TEST(ReplayTest, BisectionOfEveryBundledFabricIsItsClosedForm) {
  const struct {
    const char* file;
    int nodes;
    double cut_oversubscription;
  } fabrics[] = {{"dgx-h100", 64, 1},        {"dgx-h200", 64, 1},      {"h800-ib", 64, 1},
                 {"dgx-a100-hdr", 40, 1},    {"dgx-h100-superpod", 256, 1},
                 {"cloud-h100-2to1", 256, 2}, {"h800-mpft", 64, 1},    {"rail-only-h100", 16, 1},
                 {"p5-like-efa", 64, 1},     {"gb200-nvl72", 36, 1}};
  std::set<std::string> listed, bundled;
  for (const auto& fabric : fabrics) listed.insert(fabric.file);
  for (const auto& entry : std::filesystem::directory_iterator("topologies"))
    if (entry.path().extension() == ".yaml") bundled.insert(entry.path().stem().string());
  EXPECT_EQ(listed, bundled) << "a bundled fabric without its bisection case";
  const double bytes = 10e9;
  for (const auto& fabric : fabrics) {
    const Topology topo = LoadTopology(std::string("topologies/") + fabric.file + ".yaml", fabric.nodes);
    const int gpus = topo.total_gpus();
    const double gpu_Bps = topo.scale_out.nic_bandwidth_Bps * topo.scale_out.nics_per_node / topo.gpus_per_node;
    const double expected = bytes / gpu_Bps * fabric.cut_oversubscription;
    StepWork work;
    for (int g = 0; g < gpus; ++g) {
      const int partner = (g + gpus / 2) % gpus;
      ASSERT_FALSE(topo.SameDomain(g, partner)) << fabric.file;
      work.dispatch.push_back({g, partner, bytes});
    }
    work.route_s.assign(gpus, 0);
    work.expert_s.assign(gpus, 0);
    work.reduce_s.assign(gpus, 0);
    const StepTimeline t = AnalyticReplayStep(FabricLayout(topo, gpus), work);
    const Phase simgrid = ReplayOnce(topo, gpus, work.dispatch, {});
    for (int g = 0; g < gpus; ++g) {
      ASSERT_NEAR(t.gpus[g].dispatch_end, expected, 1e-4 * expected) << fabric.file << ", GPU " << g;
      ASSERT_NEAR(simgrid.dispatch_end[g], expected, 1e-4 * expected) << fabric.file << ", GPU " << g << ", SimGrid";
    }
  }
}

TEST(ReplayTest, ThreeTierHopsAndUniformAllToAll) {
  const Topology topo = ParseTopology(kThreeTierTopology, "three-tier.yaml");
  const FabricLayout layout(topo, 16);
  // Rail-optimized: node n's NIC r is slot r * 4 + n % 4 of pod n / 4; GPU 2n + r uses it.
  EXPECT_DOUBLE_EQ(layout.RouteLatencyS(0, 2), 2e-6 + 1 * 0.5e-6);  // nodes 0, 1 rail 0: one leaf
  EXPECT_DOUBLE_EQ(layout.RouteLatencyS(0, 4), 2e-6 + 3 * 0.5e-6);  // node 2 rail 0: other leaf, same pod
  EXPECT_DOUBLE_EQ(layout.RouteLatencyS(0, 3), 2e-6 + 3 * 0.5e-6);  // node 1 rail 1: other rail's leaf
  EXPECT_DOUBLE_EQ(layout.RouteLatencyS(0, 8), 2e-6 + 5 * 0.5e-6);  // node 4: the other pod
  const double bytes = 8e6, expected = 14 * bytes / 50e9 + (2 * 1e-6 + 5 * 0.5e-6);
  const std::vector<Flow> flows = AllToAll(16, bytes);
  for (const double t : ReplayOnce(topo, 16, flows, {}).dispatch_end) EXPECT_NEAR(t, expected, 0.02 * expected);
  StepWork work;
  work.dispatch = flows;
  work.route_s.assign(16, 0);
  work.expert_s.assign(16, 0);
  work.reduce_s.assign(16, 0);
  for (const GpuTimeline& g : AnalyticReplayStep(layout, work).gpus) EXPECT_NEAR(g.dispatch_end, expected, 0.02 * expected);
}

// The platform's own latency model (1 switch within a leaf, 3 across) must agree with the
// routes SimGrid actually built, for every GPU pair.
TEST(PlatformTest, RoutesMatchTheLatencyModel) {
  for (bool rail_optimized : {true, false}) {
    std::string text = kTwoNodeTopology;
    if (!rail_optimized) text.replace(text.find("rail_optimized: true"), 20, "rail_optimized: false");
    text.replace(text.find("leaf_down_ports: 32"), 19, "leaf_down_ports: 4");
    const Topology topo = ParseTopology(text, "t.yaml", 4);  // 32 GPUs, leaves of 4 NICs
    std::vector<double> out = InSimGridChild(32, [&](simgrid::s4u::Engine&) {
      Platform platform(topo, 32);
      std::vector<double> mismatches = {0, 0, 0};
      for (int a = 0; a < 32; ++a) {
        for (int b = 0; b < 32; ++b) {
          if (a == b) continue;
          FlowPath path = platform.Path(a, b);
          std::vector<simgrid::s4u::Link*> links;
          double latency = 0;
          path.src->route_to(path.dst, links, &latency);
          size_t expected_links = topo.SameDomain(a, b) ? 2 : (platform.layout().SameLeaf(a, b) ? 2 : 4);
          if (links.size() != expected_links) mismatches[0] += 1;
          if (topo.SameDomain(a, b) &&
              (links[0]->get_name() != "gpu-" + std::to_string(a) + "-nvl-up" ||
               links[1]->get_name() != "gpu-" + std::to_string(b) + "-nvl-down"))
            mismatches[1] += 1;
          if (latency != 0) mismatches[2] += 1;  // latency is added per flow, not by SimGrid
        }
      }
      return mismatches;
    });
    EXPECT_EQ(out, (std::vector<double>{0, 0, 0})) << "rail_optimized " << rail_optimized;
  }
}

// Four NICs per GPU (nodes of 2 GPUs and 8 NICs): a fabric flow is striped over the
// sender's 4 NICs into the receiver's 4, each stripe a quarter of the bytes at one NIC's rate,
// so S moves in S / (4 x 12.5 GB/s) plus one leaf's latency (each rail's leaf holds both
// nodes). Two flows from GPUs 0 and 1 into GPU 2 share GPU 2's 4 NICs: 2 S / (4 x 12.5 GB/s),
// plus 3 switches for GPU 1's stripes (its NICs 4-7 are on other rails than GPU 2's 0-3).
// Both engines; the fabric's links each carry a stripe. Then one of GPU 0's NICs down.
TEST(ReplayTest, FlowsStripeOverAGpusNics) {
  const Topology topo = ParseTopology(testing::kFourNicsPerGpuTopology, "four-nics");
  ASSERT_EQ(topo.NicsPerGpu(), 4);
  const FabricLayout layout(topo, 4);
  ASSERT_EQ(layout.Stripes(0, 2), 4);
  ASSERT_EQ(layout.Stripes(0, 1), 1);  // NVLink
  const double bytes = 40e6, nic_Bps = 12.5e9, latency = 2 * 1e-6 + 0.5e-6;
  const double one = bytes / (4 * nic_Bps) + latency, two = 2 * bytes / (4 * nic_Bps) + 2 * 1e-6 + 3 * 0.5e-6;
  EXPECT_NEAR(ReplayOnce(topo, 4, {{0, 2, bytes}}, {}).dispatch_end[2], one, 0.01 * one);
  EXPECT_NEAR(ReplayOnce(topo, 4, {{0, 2, bytes}, {1, 2, bytes}}, {}).dispatch_end[2], two, 0.01 * two);
  StepWork work;
  work.route_s.assign(4, 0);
  work.expert_s.assign(4, 0);
  work.reduce_s.assign(4, 0);
  work.dispatch = {{0, 2, bytes}};
  EXPECT_NEAR(AnalyticReplayStep(layout, work).gpus[2].dispatch_end, one, 0.01 * one);
  work.dispatch = {{0, 2, bytes}, {1, 2, bytes}};
  EXPECT_NEAR(AnalyticReplayStep(layout, work).gpus[2].dispatch_end, two, 0.01 * two);
  // Stripe i leaves through the sender's NIC i (GPU 0: NICs 0-3; GPU 1: 4-7) and arrives on
  // the receiver's NIC i.
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(layout.LinkName(layout.SendPortLink(0, 2, false, s)), "nic-0." + std::to_string(s) + "-up");
    EXPECT_EQ(layout.LinkName(layout.SendPortLink(1, 2, false, s)), "nic-0." + std::to_string(4 + s) + "-up");
    EXPECT_EQ(layout.LinkName(layout.ReceivePortLink(0, 2, false, s)), "nic-1." + std::to_string(s) + "-down");
  }

  // GPU 0's NIC 1 down: its flows stripe over its NICs 0, 2 and 3 (into the receiver's 0, 2
  // and 3), a third of the bytes each: S / (3 x 12.5 GB/s). With GPU 1's four quarters into
  // GPU 2 as well, GPU 2's NICs 0, 2 and 3 each receive S / 3 + S / 4 = 7 S / 12 and are
  // busy throughout: GPU 0's thirds arrive last, at 7 S / 12 / 12.5 GB/s plus one leaf.
  const int nic_1 = layout.NicUpLink(0, 1);
  const std::vector<std::pair<int, double>> down = {{nic_1, 0}, {nic_1 + 1, 0}};
  const double thirds = bytes / (3 * nic_Bps) + latency, shared = 7 * bytes / 12 / nic_Bps + latency;
  EXPECT_NEAR(ReplayOnce(topo, 4, {{0, 2, bytes}}, {}, 0, down).dispatch_end[2], thirds, 0.01 * thirds);
  EXPECT_NEAR(ReplayOnce(topo, 4, {{0, 2, bytes}, {1, 2, bytes}}, {}, 0, down).dispatch_end[2], shared, 0.01 * shared);
  work.link_rate = down;
  work.link_down.assign(layout.num_links(), 0);
  work.link_down[nic_1] = work.link_down[nic_1 + 1] = 1;
  work.dispatch = {{0, 2, bytes}};
  EXPECT_NEAR(AnalyticReplayStep(layout, work).gpus[2].dispatch_end, thirds, 0.01 * thirds);
  work.dispatch = {{0, 2, bytes}, {1, 2, bytes}};
  for (const SharingSolver solver : {SharingSolver::kMaxMin, SharingSolver::kProcessorSharing})
    EXPECT_NEAR(AnalyticReplayStep(layout, work, solver).gpus[2].dispatch_end, shared, 0.01 * shared);
  int used = 0;
  EXPECT_EQ(layout.ForEachStripe(0, 2, false, &work.link_down, [&](int s, int) { used += s != 1; }), 3);
  EXPECT_EQ(used, 3);  // stripes 0, 2, 3
  EXPECT_EQ(layout.ForEachStripe(0, 1, false, &work.link_down, [](int, int) {}), 1);  // NVLink: one
}

// A fault: one link at a fraction of its rate. Eight GPUs of node 0 send S each to GPU 8
// (node 1, NIC 0); its NIC's down link at half rate binds: 8 S / (50 GB/s / 2), plus the
// route latency of the cross-rail flows (2 NIC + 3 switch traversals). Then one flow through
// a spine link at a quarter of its rate: S / (50 GB/s / 4). Both engines.
TEST(ReplayTest, DegradedLinksSlowTheirFlowsAsClosedForms) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node");
  const FabricLayout layout(topo, 16);
  const double bytes = 16e6, nic_Bps = 50e9, latency = 2 * 1e-6 + 3 * 0.5e-6;
  std::vector<Flow> incast;
  for (int g = 0; g < 8; ++g) incast.push_back({g, 8, bytes});
  const int nic_down = layout.NicUpLink(1, 0) + 1;
  ASSERT_EQ(layout.LinkName(nic_down), "nic-1.0-down");
  const double incast_s = 8 * bytes / (nic_Bps * 0.5) + latency;
  EXPECT_NEAR(ReplayOnce(topo, 16, incast, {}, 0, {{nic_down, 0.5}}).dispatch_end[8], incast_s, 0.01 * incast_s);
  StepWork work;
  work.dispatch = incast;
  work.route_s.assign(16, 0);
  work.expert_s.assign(16, 0);
  work.reduce_s.assign(16, 0);
  work.link_rate = {{nic_down, 0.5}};
  EXPECT_NEAR(AnalyticReplayStep(layout, work).gpus[8].dispatch_end, incast_s, 0.01 * incast_s);

  const int spine_down = layout.RouteLinks(1, 8)[2];
  ASSERT_STREQ(layout.LinkTier(spine_down), "spine");
  const double one_s = bytes / (nic_Bps * 0.25) + latency;
  EXPECT_NEAR(ReplayOnce(topo, 16, {{1, 8, bytes}}, {}, 0, {{spine_down, 0.25}}).dispatch_end[8], one_s, 0.01 * one_s);
  work.dispatch = {{1, 8, bytes}};
  work.link_rate = {{spine_down, 0.25}};
  EXPECT_NEAR(AnalyticReplayStep(layout, work).gpus[8].dispatch_end, one_s, 0.01 * one_s);
}

// Parts down, routed around. Two nodes, leaves of 2 NICs (leaf r: rail r), 2 spines.
// GPU 0 -> GPU 10 (slot 5: spine 5 mod 2 = 1) and GPU 8 -> GPU 2 (slot 4: spine 0) both go
// from leaf 0 to leaf 2, on different spines: S / 50 GB/s each. With spine 1 down the first
// turns to spine 0 and the two share its links: 2 S / 50 GB/s each (fast path; SimGrid's
// routes do not turn).
TEST(ReplayTest, FlowsTurnAroundADownSpineAsClosedForms) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node");
  const FabricLayout layout(topo, 16);
  const double bytes = 16e6, nic_Bps = 50e9, latency = 2 * 1e-6 + 3 * 0.5e-6;
  const std::vector<int> spine_1 = layout.SwitchLinks("spine-1");
  ASSERT_EQ(spine_1.size(), 16u);  // up from and down to each of the 8 leaves
  std::vector<char> down(layout.num_links(), 0);
  for (const int l : spine_1) down[l] = 1;
  EXPECT_EQ(layout.LinkName(layout.RouteLinks(0, 10)[1]), "leaf-0-spine-1");
  EXPECT_EQ(layout.LinkName(layout.RouteLinks(0, 10, false, 0, &down)[1]), "leaf-0-spine-0");
  EXPECT_EQ(layout.LinkName(layout.RouteLinks(0, 10, false, 0, &down)[2]), "spine-0-leaf-2");
  EXPECT_EQ(layout.RouteLinks(8, 2, false, 0, &down), layout.RouteLinks(8, 2));  // spine 0 all along
  EXPECT_DOUBLE_EQ(layout.RouteLatencyS(0, 10), latency);
  StepWork work;
  work.dispatch = {{0, 10, bytes}, {8, 2, bytes}};
  work.route_s.assign(16, 0);
  work.expert_s.assign(16, 0);
  work.reduce_s.assign(16, 0);
  const double apart = bytes / nic_Bps + latency, shared = 2 * bytes / nic_Bps + latency;
  EXPECT_NEAR(AnalyticReplayStep(layout, work).gpus[10].dispatch_end, apart, 0.01 * apart);
  for (const int l : spine_1) work.link_rate.push_back({l, 0.0});
  work.link_down = down;
  const StepTimeline t = AnalyticReplayStep(layout, work);
  EXPECT_NEAR(t.gpus[10].dispatch_end, shared, 0.01 * shared);
  EXPECT_NEAR(t.gpus[2].dispatch_end, shared, 0.01 * shared);
  // Both spines down: no route left; a NIC port down: the traffic's to avoid, not the layout's.
  for (const int l : layout.SwitchLinks("spine-0")) down[l] = 1;
  EXPECT_THROW(layout.RouteLinks(0, 10, false, 0, &down), NoRouteError);
  std::vector<char> nic(layout.num_links(), 0);
  nic[layout.NicUpLink(0, 0)] = 1;
  EXPECT_THROW(layout.RouteLinks(0, 10, false, 0, &nic), NoRouteError);
  // A leaf switch: its 2 NIC ports (up and down) and its 2 spine links each way.
  EXPECT_EQ(layout.SwitchLinks("leaf-3").size(), 8u);
  EXPECT_TRUE(layout.SwitchLinks("leaf-8").empty());
  EXPECT_TRUE(layout.SwitchLinks("core-0").empty());  // two tiers
}

// Three tiers: a flow leaving its pod climbs to core (slot / S mod C) of its spine's plane;
// with that core down it takes the next one, and with its spine's link to every core down
// the next spine.
TEST(ReplayTest, FlowsTurnAroundADownCore) {
  const Topology topo = ParseTopology(kThreeTierTopology, "three-tier.yaml");
  const FabricLayout layout(topo, 16);
  const std::array<int, kMaxRouteLinks> route = layout.RouteLinks(0, 8);
  const std::string core_up = layout.LinkName(route[2]);
  ASSERT_EQ(core_up.rfind("spine-", 0), 0u) << core_up;
  const std::string core = core_up.substr(core_up.find("core-"));
  std::vector<char> down(layout.num_links(), 0);
  for (const int l : layout.SwitchLinks(core)) down[l] = 1;
  const std::array<int, kMaxRouteLinks> turned = layout.RouteLinks(0, 8, false, 0, &down);
  EXPECT_EQ(turned[1], route[1]);  // the same spine
  EXPECT_NE(turned[2], route[2]);  // another core
  EXPECT_EQ(layout.LinkName(turned[2]).substr(0, core_up.find("-core-")), core_up.substr(0, core_up.find("-core-")));
  const std::string spine = core_up.substr(0, core_up.find("-core-"));
  for (const int l : layout.SwitchLinks(spine)) down[l] = 1;
  const std::array<int, kMaxRouteLinks> other_spine = layout.RouteLinks(0, 8, false, 0, &down);
  EXPECT_NE(other_spine[1], route[1]);
  for (const int l : other_spine) EXPECT_EQ(down[l], 0) << layout.LinkName(l);
}

TEST(ReplayTest, OneNvswitchNodeUniformMatchesClosedForm) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node", /*nodes_override=*/1);
  const double bytes = 64e6;  // S to each peer
  Phase phase = ReplayOnce(topo, 8, AllToAll(8, bytes), {});
  // Each GPU's port carries 7 S out and 7 S in: 7 S / B, plus one NVSwitch latency.
  const double expected = 7 * bytes / 400e9 + 2e-6;
  for (double t : phase.dispatch_end) EXPECT_NEAR(t, expected, 0.01 * expected);
}

TEST(ReplayTest, TwoRailOptimizedNodesAreNicBound) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node");
  const double bytes = 32e6;
  Phase phase = ReplayOnce(topo, 16, AllToAll(16, bytes), {});
  // Each NIC sends 8 S to the other node and receives 8 S from it at 50 GB/s; NVLink's
  // 7 S at 400 GB/s finishes first. The slowest flow crosses leaf, spine and leaf:
  // latency = 2 NIC + 3 switch traversals.
  const double nic_Bps = 400e9 / 8;
  const double expected = 8 * bytes / nic_Bps + (2 * 1e-6 + 3 * 0.5e-6);
  for (double t : phase.dispatch_end) EXPECT_NEAR(t, expected, 0.02 * expected);
}

TEST(ReplayTest, IncastOnOneReceiverIsBoundByItsPort) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node", 1);
  // Seven GPUs send S to GPU 0 only: its down port carries 7 S.
  std::vector<Flow> flows;
  const double bytes = 10e6;
  for (int s = 1; s < 8; ++s) flows.push_back({s, 0, bytes});
  Phase phase = ReplayOnce(topo, 8, flows, {});
  const double expected = 7 * bytes / 400e9 + 2e-6;
  EXPECT_NEAR(phase.dispatch_end[0], expected, 0.01 * expected);
  // Senders leave the phase when their own flow has arrived, i.e. at the same time.
  for (int s = 1; s < 8; ++s) EXPECT_NEAR(phase.dispatch_end[s], expected, 0.01 * expected);
}

TEST(ReplayTest, CombineWaitsForTheSlowestExpertGpu) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node", 1);
  const double bytes = 8e6;
  // Same expert time everywhere: combine starts together and ends like dispatch.
  Phase phase = ReplayOnce(topo, 8, AllToAll(8, bytes), AllToAll(8, bytes), 1e-3);
  const double a2a = 7 * bytes / 400e9 + 2e-6;
  for (int g = 0; g < 8; ++g) {
    EXPECT_NEAR(phase.dispatch_end[g], a2a, 0.01 * a2a);
    EXPECT_NEAR(phase.combine_end[g], 2 * a2a + 1e-3, 0.01 * (2 * a2a + 1e-3));
  }
}

TEST(ReplayTest, GpusWithoutTrafficLeaveAtOnce) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node", 1);
  Phase phase = ReplayOnce(topo, 8, {{0, 1, 4e6}}, {});
  EXPECT_NEAR(phase.dispatch_end[0], 4e6 / 400e9 + 2e-6, 1e-9);
  EXPECT_NEAR(phase.dispatch_end[1], 4e6 / 400e9 + 2e-6, 1e-9);
  for (int g = 2; g < 8; ++g) EXPECT_EQ(phase.dispatch_end[g], 0.0);
}

// Two-batch overlap on two GPUs of one NVSwitch node, both engines, against the schedule
// of step_work.h worked out by hand. Per micro-batch: route r, expert e, reduce c, and one
// flow each way of S bytes (own ports only, so each all-to-all takes x = S / B + latency).
TEST(ReplayTest, TwoMicroBatchesFollowTheTwoStreamSchedule) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node", 1);
  const double r = 1e-3, e = 3e-3, c = 0.5e-3, bytes = 0.8e9;  // S / B = 2 ms
  const double x = bytes / 400e9 + 2e-6;
  StepWork work;
  work.micro_batches = 2;
  for (int m = 0; m < 2; ++m) {
    work.dispatch.push_back({0, 1, bytes, false, m});
    work.dispatch.push_back({1, 0, bytes, false, m});
    work.combine.push_back({1, 0, bytes, false, m});
    work.combine.push_back({0, 1, bytes, false, m});
    work.batch_route_s.push_back({r, r});
    work.batch_expert_s.push_back({e, e});
    work.batch_reduce_s.push_back({c, c});
  }
  work.route_s = {2 * r, 2 * r};
  work.expert_s = {2 * e, 2 * e};
  work.reduce_s = {2 * c, 2 * c};
  // Compute: route 0 [0, r], route 1 [r, 2r]. Communication: dispatch 0 [r, r + x],
  // dispatch 1 from max(r + x, 2r). Expert 0 from max(2r, dispatch 0 end), expert 1 from
  // max(expert 0 end, dispatch 1 end); combine 0 from max(dispatch 1 end, expert 0 end),
  // combine 1 from max(combine 0 end, expert 1 end); reduce m after combine m and reduce
  // m - 1 (or expert 1).
  const double d0 = r + x, d1 = std::max(d0, 2 * r) + x;
  const double e0 = std::max(2 * r, d0) + e, e1 = std::max(e0, d1) + e;
  const double k0 = std::max(d1, e0) + x, k1 = std::max(k0, e1) + x;
  const double red0 = std::max(e1, k0) + c, end = std::max(red0, k1) + c;
  ASSERT_NEAR(end, 11.5e-3, 0.05e-3);  // the numbers above, worked by hand: 11.5 ms
  // Without overlap the same work takes 2r + 2x + 2e + 2x + 2c = 17 ms.

  const std::vector<double> simgrid = ReplayWorkOnce(topo, 2, work, [](const StepTimeline& t) {
    std::vector<double> result;
    for (const GpuTimeline& g : t.gpus)
      result.insert(result.end(), {g.dispatch_end, g.expert_end, g.combine_end, g.end, static_cast<double>(g.tasks.size())});
    return result;
  });
  const StepTimeline analytic = AnalyticReplayStep(FabricLayout(topo, 2), work);
  for (int g = 0; g < 2; ++g) {
    const GpuTimeline& a = analytic.gpus[g];
    for (const auto& [got, want] : std::vector<std::pair<double, double>>{
             {simgrid[5 * g], d1}, {simgrid[5 * g + 1], e1}, {simgrid[5 * g + 2], k1}, {simgrid[5 * g + 3], end},
             {a.dispatch_end, d1}, {a.expert_end, e1}, {a.combine_end, k1}, {a.end, end}}) {
      EXPECT_NEAR(got, want, 1e-9) << "gpu " << g;
    }
    EXPECT_EQ(simgrid[5 * g + 4], 10);  // 6 compute tasks + 4 all-to-alls
    ASSERT_EQ(a.tasks.size(), 10u);
  }
  EXPECT_NEAR(analytic.step_time_s, end, 1e-9);
}

// Expert weights beside a step (an overlapped rebalance) on two GPUs of one NVSwitch node,
// both engines: one exchange on the communication stream after the dispatch, so they move
// while the experts compute. Route r, dispatch and combine x each (one flow each way of S),
// expert e, reduce c, a move of W bytes from GPU 0 to GPU 1 taking w = W / B + latency:
// hidden under the experts when w < e (the step is r + x + e + x + c, as without it), else
// the combine waits for it (r + x + w + x + c).
TEST(ReplayTest, WeightsBesideAStepMoveWhileTheExpertsCompute) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node", 1);
  const double r = 1e-3, e = 3e-3, c = 0.5e-3, bytes = 0.8e9;
  const double x = bytes / 400e9 + 2e-6;
  for (const double weight_bytes : {0.4e9, 2e9}) {  // w = 1 ms (hidden), 5 ms (exposed by 2 ms)
    const double w = weight_bytes / 400e9 + 2e-6;
    StepWork work;
    work.dispatch = {{0, 1, bytes}, {1, 0, bytes}};
    work.combine = {{1, 0, bytes}, {0, 1, bytes}};
    work.moves = {{0, 1, weight_bytes}};
    work.route_s = {r, r};
    work.expert_s = {e, e};
    work.reduce_s = {c, c};
    const double end = r + x + std::max(e, w) + x + c;
    const std::vector<double> simgrid = ReplayWorkOnce(topo, 2, work, [](const StepTimeline& t) {
      return std::vector<double>{t.moves_flow_start[0], t.moves_flow_end[0], t.gpus[0].moves_end, t.gpus[1].end,
                                 t.step_time_s};
    });
    const StepTimeline analytic = AnalyticReplayStep(FabricLayout(topo, 2), work);
    for (const auto& [got, want] : std::vector<std::pair<double, double>>{
             {simgrid[0], r + x}, {simgrid[1], r + x + w}, {simgrid[2], r + x + w}, {simgrid[3], end}, {simgrid[4], end},
             {analytic.moves_flow_start[0], r + x}, {analytic.moves_flow_end[0], r + x + w},
             {analytic.gpus[0].moves_end, r + x + w}, {analytic.gpus[1].end, end}, {analytic.step_time_s, end}}) {
      EXPECT_NEAR(got, want, 1e-9) << weight_bytes;
    }
  }
}

}  // namespace
}  // namespace epsim
