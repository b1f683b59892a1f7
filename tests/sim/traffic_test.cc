// epsim tests: all-to-all algorithms as flows, against hand-counted routings.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>

#include "sim/workload/placement.h"
#include "sim/workload/routing_plan.h"
#include "sim/workload/routing_spec.h"
#include "sim/workload/routing_trace.h"
#include "sim/workload/sampler.h"
#include "sim/config/topology.h"
#include "sim/traffic/traffic.h"

namespace epsim {
namespace {

// Two nodes of 4 GPUs, one NVLink domain per node; experts 0..7, two per GPU.
Topology TwoNodes() {
  return ParseTopology(R"(name: t
gpu: h100
nodes: 2
gpus_per_node: 4
scale_up: {domain_gpus: 4, bandwidth: 400GB/s, latency: 1us}
scale_out: {nics_per_node: 4, nic_bandwidth: 400Gbps, nic_latency: 1us, switch_latency: 1us,
            leaf_down_ports: 32, rail_optimized: true}
)", "t.yaml");
}

std::map<std::pair<int, int>, int64_t> ByPair(const std::vector<TokenFlow>& flows) {
  std::map<std::pair<int, int>, int64_t> out;
  for (const TokenFlow& f : flows) out[{f.src, f.dst}] += f.tokens;
  return out;
}

TEST(TrafficTest, HierarchicalCrossesTheNetworkOncePerNode) {
  const Placement placement = Placement::Contiguous(8, 8);  // expert e on GPU e
  // GPU 1 (node 0, local 1): token A -> experts {5, 6, 7} (node 1: GPUs 5, 6, 7),
  // token B -> {2, 6} (GPU 2 on its own node, GPU 6 on node 1).
  std::vector<std::vector<std::vector<int>>> choices(8);
  choices[1] = {{5, 6, 7}, {2, 6}};
  const RoutingPlan plan = PlanFromChoices(choices, placement, -1, 4);
  auto flows = ByPair(DispatchFlows(plan, TwoNodes(), A2aAlgorithm::kHierarchical));
  // Network: both tokens go once to node 1, to GPU 5 (local index 1): 2 tokens.
  EXPECT_EQ(flows[std::make_pair(1, 5)], 2);
  // NVLink forwarding on node 1 from GPU 5: token A to 6 and 7, token B to 6.
  EXPECT_EQ(flows[std::make_pair(5, 6)], 2);
  EXPECT_EQ(flows[std::make_pair(5, 7)], 1);
  // Token B to GPU 2 stays on node 0 over NVLink.
  EXPECT_EQ(flows[std::make_pair(1, 2)], 1);
  EXPECT_EQ(flows.size(), 4u);
  // Network bytes = unique (token, remote node) pairs: the closed form.
  int64_t network = 0;
  for (const auto& [pair, tokens] : flows)
    if (pair.first / 4 != pair.second / 4) network += tokens;
  EXPECT_EQ(network, 2);
}

TEST(TrafficTest, DirectSendsOncePerDestinationGpu) {
  const Placement placement = Placement::Contiguous(8, 8);
  std::vector<std::vector<std::vector<int>>> choices(8);
  choices[1] = {{5, 6, 7}, {2, 6}};
  auto flows = ByPair(DispatchFlows(PlanFromChoices(choices, placement, -1, 4), TwoNodes(), A2aAlgorithm::kDirect));
  EXPECT_EQ(flows[std::make_pair(1, 5)], 1);
  EXPECT_EQ(flows[std::make_pair(1, 6)], 2);
  EXPECT_EQ(flows[std::make_pair(1, 7)], 1);
  EXPECT_EQ(flows[std::make_pair(1, 2)], 1);
}

// PXN: GPU 1 (node 0, NIC 1) to GPUs 6 and 7 (node 1, NICs 2 and 3) goes over NVLink to GPUs
// 2 and 3 of node 0 (NICs 2 and 3), which send on over their own rails; GPU 5 is on GPU 1's
// rail (direct), GPU 2 on its node (NVLink, with the relayed token for 6: 1 + 2).
TEST(TrafficTest, PxnRelaysCrossRailFlowsOverNvlink) {
  const Placement placement = Placement::Contiguous(8, 8);
  std::vector<std::vector<std::vector<int>>> choices(8);
  choices[1] = {{5, 6, 7}, {2, 6}};
  const RoutingPlan plan = PlanFromChoices(choices, placement, -1, 4);
  auto flows = ByPair(DispatchFlows(plan, TwoNodes(), A2aAlgorithm::kDirect, /*pxn=*/true));
  EXPECT_EQ(flows[std::make_pair(1, 5)], 1);
  EXPECT_EQ(flows[std::make_pair(1, 2)], 3);
  EXPECT_EQ(flows[std::make_pair(2, 6)], 2);
  EXPECT_EQ(flows[std::make_pair(1, 3)], 1);
  EXPECT_EQ(flows[std::make_pair(3, 7)], 1);
  EXPECT_EQ(flows.size(), 5u);
  // Every flow that crosses nodes stays on one rail (same local index, so the same NIC).
  for (const auto& [pair, tokens] : flows) {
    if (pair.first / 4 != pair.second / 4) {
      EXPECT_EQ(pair.first % 4, pair.second % 4);
    }
  }
}

// Two planes (NICs 0, 2 in plane 0; 1, 3 in plane 1), no PXN asked: GPU 1 (NIC 1) reaches
// GPU 7 (NIC 3, its plane) directly and GPU 6 (NIC 2, the other plane) through GPU 2 of its
// node. In a 6-GPU run node 1 is partly used: GPU 5 (NIC 1) to GPU 2 (NIC 2) would relay
// through GPU 6, which the run lacks, so it crosses the fabric first on its own plane to
// GPU 1 (NIC 1, the far node's GPU with its local index), then NVLink.
TEST(TrafficTest, MultiPlaneRelaysCrossPlaneFlowsOverNvlink) {
  std::string text = R"(name: t
gpu: h100
nodes: 2
gpus_per_node: 4
scale_up: {domain_gpus: 4, bandwidth: 400GB/s, latency: 1us}
scale_out: {nics_per_node: 4, nic_bandwidth: 400Gbps, nic_latency: 1us, switch_latency: 1us,
            leaf_down_ports: 32, rail_optimized: true, planes: 2}
)";
  const Topology planes = ParseTopology(text, "planes.yaml");
  const Placement placement = Placement::Contiguous(8, 8);
  std::vector<std::vector<std::vector<int>>> choices(8);
  choices[1] = {{5, 6, 7}, {2, 6}};
  auto flows = ByPair(DispatchFlows(PlanFromChoices(choices, placement, -1, 4), planes, A2aAlgorithm::kDirect));
  EXPECT_EQ(flows[std::make_pair(1, 5)], 1);  // NIC 1 to NIC 1
  EXPECT_EQ(flows[std::make_pair(1, 7)], 1);  // NIC 1 to NIC 3: plane 1
  EXPECT_EQ(flows[std::make_pair(1, 2)], 3);  // its own token for 2, and 2 relayed for 6
  EXPECT_EQ(flows[std::make_pair(2, 6)], 2);
  EXPECT_EQ(flows.size(), 4u);
  for (const auto& [pair, tokens] : flows)
    if (pair.first / 4 != pair.second / 4) { EXPECT_EQ(pair.first % 2, pair.second % 2) << "crosses planes"; }

  const Placement six = Placement::Contiguous(6, 6);  // expert g on GPU g
  std::vector<std::vector<std::vector<int>>> from_five(6);
  from_five[5] = {{2}, {3}};
  auto partial = ByPair(DispatchFlows(PlanFromChoices(from_five, six, -1, 4), planes, A2aAlgorithm::kLowLatency));
  EXPECT_EQ(partial[std::make_pair(5, 1)], 1);  // the fabric, plane 1, to the relay on the far side
  EXPECT_EQ(partial[std::make_pair(1, 2)], 1);  // then NVLink
  EXPECT_EQ(partial[std::make_pair(5, 3)], 1);  // NIC 1 to NIC 3: plane 1, direct
  EXPECT_EQ(partial.size(), 3u);
}

// GPU 1's NIC down (two nodes of 4 GPUs, a fat tree): its flow to GPU 5 (node 1) goes over
// NVLink to the GPU of its node with 5's local index (1: itself, down) or else the next
// local index up, GPU 2, which sends it over the fabric; GPU 6's flow to it arrives at the
// GPU of node 0 with 6's local index, GPU 2, then NVLink. Flows inside node 0 and between
// GPUs whose NICs are up stay as they are. On a rail-only fabric the peer must be on the
// other end's rail: GPU 5 (rail 1) is reached from GPU 1's node only by GPU 1 (down), so
// the flow crosses on rail 2 (GPU 2 -> GPU 6) and NVLink takes it to 5.
TEST(TrafficTest, FlowsOfAGpuWhoseNicIsDownGoThroughPeers) {
  std::vector<char> down(8, 0);
  down[1] = 1;
  const std::vector<TokenFlow> flows = {{1, 5, 10}, {6, 1, 20}, {1, 3, 30}, {0, 4, 40}};
  auto routed = ByPair(RouteAroundDownNics(flows, TwoNodes(), 8, down));
  EXPECT_EQ(routed[std::make_pair(1, 2)], 10);  // NVLink to the relay
  EXPECT_EQ(routed[std::make_pair(2, 5)], 10);      // the relay's NIC (rail 2) to GPU 5's (rail 1)
  EXPECT_EQ(routed[std::make_pair(6, 2)], 20);      // into node 0 at GPU 2 (6's local index)
  EXPECT_EQ(routed[std::make_pair(2, 1)], 20);      // then NVLink
  EXPECT_EQ(routed[std::make_pair(1, 3)], 30);      // inside the node: untouched
  EXPECT_EQ(routed[std::make_pair(0, 4)], 40);
  EXPECT_EQ(routed.size(), 6u);

  const Topology rail_only = ParseTopology(R"(name: t
gpu: h100
nodes: 2
gpus_per_node: 4
scale_up: {domain_gpus: 4, bandwidth: 400GB/s, latency: 1us}
scale_out: {nics_per_node: 4, nic_bandwidth: 400Gbps, nic_latency: 1us, switch_latency: 1us,
            leaf_down_ports: 32, rail_optimized: true, rail_only: true}
)", "rail-only.yaml");
  auto rails = ByPair(RouteAroundDownNics({{1, 5, 10}}, rail_only, 8, down));
  EXPECT_EQ(rails[std::make_pair(1, 2)], 10);
  EXPECT_EQ(rails[std::make_pair(2, 6)], 10);  // rail 2 to rail 2
  EXPECT_EQ(rails[std::make_pair(6, 5)], 10);
  EXPECT_EQ(rails.size(), 3u);

  // Every NIC of node 1 down: nothing reaches it.
  std::vector<char> node_down = {0, 0, 0, 0, 1, 1, 1, 1};
  EXPECT_THROW(RouteAroundDownNics({{0, 4, 1}}, TwoNodes(), 8, node_down), std::invalid_argument);
  // rdma-only flows use no NVLink.
  EXPECT_THROW(RouteAroundDownNics({{1, 5, 1, /*via_fabric=*/true}}, TwoNodes(), 8, down), std::invalid_argument);
}

TEST(TrafficTest, RdmaOnlyCountsEveryTokenExpertPairOverTheNics) {
  const Placement placement = Placement::Contiguous(16, 8);  // experts 2g, 2g+1 on GPU g
  std::vector<std::vector<std::vector<int>>> choices(8);
  choices[0] = {{2, 3, 10}};  // two experts on GPU 1 (same node), one on GPU 5
  std::vector<TokenFlow> flows = DispatchFlows(PlanFromChoices(choices, placement, -1, 4), TwoNodes(), A2aAlgorithm::kRdmaOnly);
  auto pairs = ByPair(flows);
  EXPECT_EQ(pairs[std::make_pair(0, 1)], 2);  // no dedup
  EXPECT_EQ(pairs[std::make_pair(0, 5)], 1);
  for (const TokenFlow& f : flows) EXPECT_TRUE(f.via_fabric);
}

// Low latency: the same (token, expert) messages, over NVLink inside the node and the NICs
// across; messages to the sender's own experts never leave it (SelfTokens counts them).
TEST(TrafficTest, LowLatencyCountsEveryTokenExpertPairOverNvlinkInsideTheNode) {
  const Placement placement = Placement::Contiguous(16, 8);  // experts 2g, 2g+1 on GPU g
  std::vector<std::vector<std::vector<int>>> choices(8);
  choices[0] = {{2, 3, 10, 0, 1}};  // two on GPU 1 (same node), one on GPU 5, two on GPU 0 itself
  const RoutingPlan plan = PlanFromChoices(choices, placement, -1, 5);
  std::vector<TokenFlow> flows = DispatchFlows(plan, TwoNodes(), A2aAlgorithm::kLowLatency);
  ASSERT_EQ(flows.size(), 2u);
  for (const TokenFlow& f : flows) {
    EXPECT_EQ(f.src, 0);
    EXPECT_EQ(f.tokens, f.dst == 1 ? 2 : 1);  // no dedup
    // The default route: NVLink to GPU 1, the NICs to GPU 5 on the other node (via_fabric
    // would force the NICs inside the node too, as rdma-only does).
    EXPECT_FALSE(f.via_fabric) << f.dst;
  }
  EXPECT_EQ(SelfTokens(plan, 0, A2aAlgorithm::kLowLatency), 2);
  EXPECT_EQ(SelfTokens(plan, 0, A2aAlgorithm::kDirect), 1);  // once per GPU
  EXPECT_EQ(SelfTokens(plan, 1, A2aAlgorithm::kLowLatency), 0);
}

TEST(TrafficTest, NodeLimitBoundsTheNodesATokenTouches) {
  // 8 nodes of 8 GPUs, 256 experts, top-8, at most 2 nodes per token.
  const Placement placement = Placement::Contiguous(256, 64);
  RoutingParams params;
  params.spec = RoutingSpec::Parse("zipf:0.8");
  params.tokens_per_gpu = 300;
  params.top_k = 8;
  params.gpus_per_node = 8;
  params.node_limit = 2;
  params.seed = 5;
  const RoutingPlan plan = SampleRouting(params, placement, 0);
  for (int g = 0; g < 64; ++g) {
    int64_t node_pairs = 0;
    for (const auto& entry : plan.node_tokens[g]) node_pairs += entry.second;
    EXPECT_LE(node_pairs, 2 * 300) << g;  // at most 2 nodes per token
    EXPECT_GE(node_pairs, 300) << g;      // at least one
  }
  EXPECT_EQ(plan.assignments, 64 * 300 * 8);
  // Without the limit, tokens reach more nodes.
  params.node_limit = 0;
  const RoutingPlan free_plan = SampleRouting(params, placement, 0);
  int64_t limited = 0, unlimited = 0;
  for (int g = 0; g < 64; ++g) {
    for (const auto& e : plan.node_tokens[g]) limited += e.second;
    for (const auto& e : free_plan.node_tokens[g]) unlimited += e.second;
  }
  EXPECT_LT(limited, unlimited);
}

TEST(TrafficTest, NodeLimitTooSmallForTopK) {
  const Placement placement = Placement::Contiguous(16, 8);  // 2 experts per GPU, 8 per node
  RoutingParams params;
  params.spec = RoutingSpec::Parse("uniform");
  params.tokens_per_gpu = 10;
  params.top_k = 9;
  params.gpus_per_node = 4;
  params.node_limit = 1;
  EXPECT_THROW(SampleRouting(params, placement, 0), std::invalid_argument);
}

}  // namespace
}  // namespace epsim
