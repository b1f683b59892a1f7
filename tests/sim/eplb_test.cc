// epsim tests: EPLB replication and packing against closed forms.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "sim/eplb.h"
#include "sim/routing.h"

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

}  // namespace
}  // namespace epsim
