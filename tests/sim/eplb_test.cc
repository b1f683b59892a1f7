// epsim tests: EPLB replication and packing against closed forms.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "sim/workload/eplb.h"
#include "sim/workload/placement.h"
#include "sim/workload/routing_plan.h"
#include "sim/workload/routing_spec.h"
#include "sim/workload/routing_trace.h"
#include "sim/workload/sampler.h"
#include "sim/workload/step_routing.h"
#include "sim/workload/weight_moves.h"

namespace epsim {
namespace {

TEST(EplbTest, ReplicationBalancesACraftedLoadToTheClosedForm) {
  // Loads 12, 4, 4, 4 (total 24) on 4 GPUs: contiguous placement puts 12 on GPU 0.
  // With 4 redundant experts (2 copies per GPU) the best possible is 24 / 4 = 6 per GPU:
  // expert 0 gets 4 copies of 3, expert 1 two copies of 2, and 4+2, 4+2, 3+3, 3+3 pack.
  const std::vector<double> load = {12, 4, 4, 4};
  const Placement contiguous = Placement::Contiguous(4, 4);
  const std::vector<double> before = GpuLoads(contiguous, load);
  EXPECT_DOUBLE_EQ(*std::max_element(before.begin(), before.end()), 12);
  const Placement balanced = BalancedReplication(load, 4, 4);
  EXPECT_EQ(balanced.Replicas(0).size(), 4u);
  EXPECT_EQ(balanced.Replicas(1).size(), 2u);
  const std::vector<double> per_gpu = GpuLoads(balanced, load);
  for (double x : per_gpu) EXPECT_DOUBLE_EQ(x, 6.0);
  for (int copies : balanced.CopiesPerGpu()) EXPECT_EQ(copies, 2);
}

TEST(EplbTest, NoRedundancyStillBalancesByPacking) {
  // 8 experts on 2 GPUs, loads 8 7 6 5 4 3 2 1 (total 36): LPT packing gives 18 / 18.
  const std::vector<double> load = {8, 7, 6, 5, 4, 3, 2, 1};
  const std::vector<double> per_gpu = GpuLoads(BalancedReplication(load, 2, 0), load);
  EXPECT_DOUBLE_EQ(per_gpu[0] + per_gpu[1], 36);
  EXPECT_DOUBLE_EQ(std::max(per_gpu[0], per_gpu[1]), 18);
}

TEST(EplbTest, PigeonholeBoundsWhatPackingCanDo) {
  // Expert 0 (load 100) gets all 4 redundant copies: 5 copies of 20 in 4 GPUs x 2 slots, so
  // one GPU holds two of them (40); the others 20 + 1. Load is conserved.
  const std::vector<double> load = {100, 1, 1, 1};
  const std::vector<double> per_gpu = GpuLoads(BalancedReplication(load, 4, 4), load);
  std::vector<double> sorted = per_gpu;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<double>{21, 21, 21, 40}));
}

TEST(EplbTest, RejectsShapesThatDoNotPack) {
  EXPECT_THROW(BalancedReplication({1, 1, 1}, 2, 0), std::invalid_argument);  // 3 copies, 2 GPUs
  EXPECT_THROW(BalancedReplication({1, 1}, 4, 0), std::invalid_argument);     // fewer copies than GPUs
}

TEST(EplbTest, ReplicasAddCapacity) {
  RoutingParams params;
  params.tokens_per_gpu = 100;
  params.top_k = 2;
  params.capacity_factor = 1.0;
  // 4 experts, one with 3 copies: 6 copies, ceil(100 * 2 / 6) = 34 per copy.
  const Placement p = Placement::FromReplicas(3, {{0, 1, 2}, {0}, {1}, {2}});
  EXPECT_EQ(ExpertCapacities(params, p), (std::vector<int64_t>{102, 34, 34, 34}));
  // One copy each: Megatron's ceil(cf T k / E) = 50.
  EXPECT_EQ(ExpertCapacities(params, Placement::Contiguous(4, 2)), (std::vector<int64_t>{50, 50, 50, 50}));
}

TEST(EplbTest, TokensOfAReplicatedExpertAreSplitAmongItsCopies) {
  const Placement p = Placement::FromReplicas(4, {{0, 1, 2, 3}, {0}, {1}, {2}, {3}});
  std::vector<std::vector<std::vector<int>>> choices(4);
  for (int g = 0; g < 4; ++g) choices[g] = {{0}, {0}};  // every GPU sends 2 tokens to expert 0
  const RoutingPlan plan = PlanFromChoices(choices, p, -1);
  for (int g = 0; g < 4; ++g) EXPECT_EQ(plan.ExpertInputTokens(g), 2) << g;
}

// ---- hierarchical EPLB --------------------------------------------------------------------

// The node (block of `gpus_per_node` GPUs) holding each expert's copies; -1 if they span nodes.
std::vector<int> NodeOfExperts(const Placement& p, int gpus_per_node) {
  std::vector<int> node(p.num_experts());
  for (int e = 0; e < p.num_experts(); ++e) {
    node[e] = p.Replicas(e)[0] / gpus_per_node;
    for (int g : p.Replicas(e))
      if (g / gpus_per_node != node[e]) node[e] = -1;
  }
  return node;
}

TEST(HierarchicalEplbTest, CraftedLoadReachesTheClosedForm) {
  // Loads 12, 4, 4, 4 on 2 nodes x 2 GPUs with 4 redundant experts: 8 copies, 2 per GPU,
  // 4 per node. One group per node: experts {0, 1} (load 16) stay on node 0, {2, 3} (load 8)
  // on node 1. Node 0 replicates with its 2 extra slots: expert 0 -> 2 copies of 6, then
  // (6 > 4) -> 3 copies of 4; its copies 4, 4, 4, 4 (expert 1) pack 8 + 8. Node 1: expert
  // 2 -> 2 copies of 2, then expert 3 (4 > 2) -> 2 of 2; copies 2, 2, 2, 2 pack 4 + 4.
  // Max 8 = the heavier group / its 2 GPUs. Flat EPLB reaches 24 / 4 = 6 only by splitting
  // the group: expert 0's 4 copies fill node 1, expert 1 goes to node 0.
  const std::vector<double> load = {12, 4, 4, 4};
  const Placement p = HierarchicalReplication(load, 4, 4, 2);
  EXPECT_EQ(p.Replicas(0).size(), 3u);
  EXPECT_EQ(p.Replicas(1).size(), 1u);
  EXPECT_EQ(p.Replicas(2).size(), 2u);
  EXPECT_EQ(p.Replicas(3).size(), 2u);
  EXPECT_EQ(GpuLoads(p, load), (std::vector<double>{8, 8, 4, 4}));
  EXPECT_EQ(NodeOfExperts(p, 2), (std::vector<int>{0, 0, 1, 1}));
  const std::vector<double> flat = GpuLoads(BalancedReplication(load, 4, 4), load);
  EXPECT_DOUBLE_EQ(*std::max_element(flat.begin(), flat.end()), 6);
  EXPECT_EQ(NodeOfExperts(BalancedReplication(load, 4, 4), 2), (std::vector<int>{1, 0, 0, 0}));
}

TEST(HierarchicalEplbTest, GroupsArePackedOntoNodesByLoad) {
  // 8 experts in 4 groups of 2 on 2 nodes x 2 GPUs, no redundancy. Expert loads
  // 6 4 | 3 3 | 1 0 | 3 2: group loads 10, 6, 1, 5. Packing, heaviest first onto the lighter
  // node with room: g0 -> n0 (10), g1 -> n1 (6), g3 -> n1 (11), g2 -> n0 (11).
  // Node 0 = experts 0, 1, 4, 5 (loads 6, 4, 1, 0): 6 -> GPU 0, 4 -> GPU 1, 1 -> GPU 1 (4 < 6),
  // 0 -> GPU 0 (GPU 1 full). Node 1 = experts 2, 3, 6, 7 (3, 3, 3, 2): 3 -> GPU 2, 3 -> GPU 3,
  // 3 -> GPU 2 (tie: lower), 2 -> GPU 3.
  const std::vector<double> load = {6, 4, 3, 3, 1, 0, 3, 2};
  const Placement p = HierarchicalReplication(load, 4, 0, 2, 4);
  const std::vector<int> gpu_of = {0, 1, 2, 3, 1, 0, 2, 3};
  for (int e = 0; e < 8; ++e) EXPECT_EQ(p.Replicas(e), std::vector<int>{gpu_of[e]}) << e;
  EXPECT_EQ(GpuLoads(p, load), (std::vector<double>{6, 5, 6, 5}));
}

TEST(HierarchicalEplbTest, CopiesStayInTheirGroupsNode) {
  // 64 experts, 16 GPUs in 4 nodes of 4, 16 redundant: 80 copies, 5 per GPU, 20 per node.
  std::vector<double> load(64);
  for (int e = 0; e < 64; ++e) load[e] = 1000.0 / ((e * 37) % 64 + 1);  // skewed, scattered
  const Placement p = HierarchicalReplication(load, 16, 16, 4);
  const std::vector<int> node = NodeOfExperts(p, 4);
  std::vector<int> node_copies(4, 0);
  for (int e = 0; e < 64; ++e) {
    EXPECT_EQ(node[e], e / 16) << e;  // one group of 16 contiguous experts per node
    node_copies[e / 16] += static_cast<int>(p.Replicas(e).size());
  }
  EXPECT_EQ(node_copies, (std::vector<int>{20, 20, 20, 20}));  // R / nodes = 4 extra each
  for (int copies : p.CopiesPerGpu()) EXPECT_EQ(copies, 5);
  const std::vector<double> per_gpu = GpuLoads(p, load);
  EXPECT_NEAR(std::accumulate(per_gpu.begin(), per_gpu.end(), 0.0),
              std::accumulate(load.begin(), load.end(), 0.0), 1e-9);  // load conserved
  // Deterministic: the same loads give the same placement.
  const Placement again = HierarchicalReplication(load, 16, 16, 4);
  for (int e = 0; e < 64; ++e) EXPECT_EQ(p.Replicas(e), again.Replicas(e));
}

TEST(HierarchicalEplbTest, OneNodeIsTheFlatPolicy) {
  const std::vector<double> load = {12, 4, 4, 4};
  const Placement hier = HierarchicalReplication(load, 4, 4, 4);
  const Placement flat = BalancedReplication(load, 4, 4);
  for (int e = 0; e < 4; ++e) EXPECT_EQ(hier.Replicas(e), flat.Replicas(e));
}

TEST(HierarchicalEplbTest, RejectsShapesThatDoNotSplitIntoNodes) {
  const std::vector<double> eight(8, 1.0);
  EXPECT_THROW(HierarchicalReplication(eight, 6, 4, 4), std::invalid_argument);     // 6 GPUs, nodes of 4
  EXPECT_THROW(HierarchicalReplication(std::vector<double>(6, 1.0), 4, 2, 1), std::invalid_argument);  // 6 experts, 4 nodes
  EXPECT_THROW(HierarchicalReplication(eight, 4, 2, 2), std::invalid_argument);     // 10 copies, 4 GPUs
  EXPECT_THROW(HierarchicalReplication(eight, 4, 0, 2, 3), std::invalid_argument);  // 8 experts, 3 groups
  EXPECT_THROW(HierarchicalReplication(eight, 4, 0, 1, 2), std::invalid_argument);  // 2 groups, 4 nodes
}

TEST(HierarchicalEplbTest, NodeLimitHoldsWithReplicas) {
  // 32 experts on 16 GPUs in 4 nodes of 4, 16 redundant (3 copies per GPU), node limit 2:
  // no token's experts, at the copies that serve its source, lie on more than 2 nodes.
  std::vector<double> load(32);
  for (int e = 0; e < 32; ++e) load[e] = 1.0 / (e + 1);
  const Placement p = HierarchicalReplication(load, 16, 16, 4);
  RoutingParams params;
  params.spec = RoutingSpec::Parse("zipf:1");
  params.tokens_per_gpu = 500;
  params.top_k = 4;
  params.seed = 13;
  params.gpus_per_node = 4;
  params.node_limit = 2;
  const auto choices = SampleTokenChoices(params, p, 0);
  int64_t two_nodes = 0, remote_copies = 0;
  for (int g = 0; g < 16; ++g) {
    for (const auto& token : choices[g]) {
      std::set<int> nodes;
      for (int e : token) {
        nodes.insert(p.GpuFor(e, g) / 4);
        remote_copies += p.Replicas(e).size() > 1 && p.GpuFor(e, g) != p.Replicas(e)[0];
      }
      EXPECT_LE(nodes.size(), 2u);
      two_nodes += nodes.size() == 2;
    }
  }
  EXPECT_GT(two_nodes, 0);       // the limit binds, not a trivial one-node run
  EXPECT_GT(remote_copies, 0);   // and replicas other than the first serve tokens
  // The plan agrees: a source's tokens reach at most 2 nodes each.
  const RoutingPlan plan = SampleRouting(params, p, 0);
  for (int g = 0; g < 16; ++g) {
    int64_t node_visits = 0;
    for (const auto& [node, tokens] : plan.node_tokens[g]) node_visits += tokens;
    EXPECT_LE(node_visits, 2 * 500) << g;
  }
  // Flat EPLB's copies span nodes: the node-limited sampler refuses them.
  EXPECT_THROW(SampleRouting(params, BalancedReplication(load, 16, 16), 0), std::invalid_argument);
}

TEST(HierarchicalEplbTest, NodeLimitWithMoreGpusThanExperts) {
  // 8 experts, 8 redundant, 16 GPUs in 4 nodes: one copy per GPU, 2 experts per node.
  const std::vector<double> load = {8, 1, 4, 4, 2, 2, 1, 1};
  const Placement p = HierarchicalReplication(load, 16, 8, 4);
  EXPECT_EQ(NodeOfExperts(p, 4), (std::vector<int>{0, 0, 1, 1, 2, 2, 3, 3}));
  RoutingParams params;
  params.spec = RoutingSpec::Parse("uniform");
  params.tokens_per_gpu = 200;
  params.top_k = 2;
  params.seed = 2;
  params.gpus_per_node = 4;
  params.node_limit = 1;
  const auto choices = SampleTokenChoices(params, p, 0);
  for (int g = 0; g < 16; ++g)
    for (const auto& token : choices[g]) EXPECT_EQ(p.GpuFor(token[0], g) / 4, p.GpuFor(token[1], g) / 4);
}

// A rebalance moves exactly the copies whose GPU is new to their expert: a copy kept where
// it was moves nothing, a second copy on the same GPU is one move, and each comes from an old
// holder in the receiver's domain (2 GPUs each here) when there is one, else the first.
TEST(WeightMovesTest, OnlyCopiesNewToTheirGpuMoveFromTheNearestHolder) {
  const Placement before = Placement::FromReplicas(4, {{0}, {1, 2}, {3}});
  const Placement after = Placement::FromReplicas(4, {{0, 1}, {3, 3}, {3, 2}});
  const std::vector<WeightMove> moves = WeightMoves(before, after, 2);
  // Expert 0: new on GPU 1, from GPU 0 (same domain). Expert 1: new on GPU 3 (twice, one
  // move), from GPU 2 (GPU 3's domain). Expert 2: new on GPU 2, from GPU 3 (same domain).
  ASSERT_EQ(moves.size(), 3u);
  EXPECT_EQ(moves[0].expert, 0);
  EXPECT_EQ(moves[0].src, 0);
  EXPECT_EQ(moves[0].dst, 1);
  EXPECT_EQ(moves[1].expert, 1);
  EXPECT_EQ(moves[1].src, 2);
  EXPECT_EQ(moves[1].dst, 3);
  EXPECT_EQ(moves[2].expert, 2);
  EXPECT_EQ(moves[2].src, 3);
  EXPECT_EQ(moves[2].dst, 2);
  // Across domains: expert 0's new copy on GPU 3 comes from its only holder, GPU 0.
  const std::vector<WeightMove> far = WeightMoves(before, Placement::FromReplicas(4, {{3}, {1, 2}, {3}}), 2);
  ASSERT_EQ(far.size(), 1u);
  EXPECT_EQ(far[0].src, 0);
  EXPECT_EQ(far[0].dst, 3);
  EXPECT_TRUE(WeightMoves(before, before, 2).empty());
}

bool SamePlacement(const Placement& a, const Placement& b) {
  if (a.num_experts() != b.num_experts()) return false;
  for (int e = 0; e < a.num_experts(); ++e)
    if (a.Replicas(e) != b.Replicas(e)) return false;
  return true;
}

// Overlapped rebalancing defers each plan after step 0 by a step: a rebalance step still
// routes on the placement before it (its plan pending, the one the undeferred run uses
// there), and the plan is in force from the next step. The tokens' choices do not depend on
// the placement, so both runs make the same plans from the same loads.
TEST(StepRoutingTest, DeferredPlansTakeEffectAStepLater) {
  RoutingParams params;
  params.spec = RoutingSpec::Parse("zipf:1.2");
  params.tokens_per_gpu = 256;
  params.top_k = 4;
  params.capacity_factor = 1.25;
  params.seed = 5;
  StepRoutingOptions options;
  options.rebalancing = Rebalancing::kGlobal;
  options.redundant_experts = 16;
  options.rebalance_interval = 3;
  options.drift_steps = 3;
  StepRouting now(params, Placement::Contiguous(32, 16), options);
  options.defer_new_placement = true;
  StepRouting deferred(params, Placement::Contiguous(32, 16), options);
  Placement before = now.placement();
  for (int step = 0; step < 10; ++step) {
    now.Next(step);
    deferred.Next(step);
    const bool rebalance = step > 0 && step % 3 == 0;
    EXPECT_TRUE(SamePlacement(deferred.placement(), rebalance ? before : now.placement())) << step;
    ASSERT_EQ(deferred.pending() != nullptr, rebalance) << step;
    if (rebalance) {
      EXPECT_TRUE(SamePlacement(*deferred.pending(), now.placement())) << step;
      EXPECT_FALSE(SamePlacement(*deferred.pending(), before)) << step;  // the plan changed
    } else {
      EXPECT_EQ(deferred.plan().expert_kept, now.plan().expert_kept) << step;
    }
    before = now.placement();
  }
}

}  // namespace
}  // namespace epsim
