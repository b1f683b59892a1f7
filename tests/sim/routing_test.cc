// epsim tests: routing sampler, placement, capacity drops and traffic counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "sim/routing.h"

namespace epsim {
namespace {

RoutingParams Params(const std::string& spec, int tokens, int top_k, double cf, uint64_t seed = 7) {
  RoutingParams p;
  p.spec = RoutingSpec::Parse(spec);
  p.tokens_per_gpu = tokens;
  p.top_k = top_k;
  p.capacity_factor = cf;
  p.seed = seed;
  return p;
}

int64_t Sum(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}

TEST(RoutingSpecTest, Parses) {
  EXPECT_EQ(RoutingSpec::Parse("uniform").kind, RoutingSpec::Kind::kUniform);
  EXPECT_EQ(RoutingSpec::Parse("zipf:1.2").parameter, 1.2);
  EXPECT_EQ(RoutingSpec::Parse("hot:0.1").kind, RoutingSpec::Kind::kHot);
  EXPECT_EQ(RoutingSpec::Parse("zipf:1.2").ToString(), "zipf:1.2");
  for (const char* bad : {"zipf", "zipf:", "zipf:x", "hot:1.5", "hot:0", "pareto:1", "zipf:-1", "zipf:nan"})
    EXPECT_THROW(RoutingSpec::Parse(bad), std::invalid_argument) << bad;
}

TEST(PlacementTest, ContiguousBlocks) {
  Placement p = Placement::Contiguous(256, 64);
  EXPECT_EQ(p.GpuFor(0, 5), 0);
  EXPECT_EQ(p.GpuFor(3, 5), 0);
  EXPECT_EQ(p.GpuFor(4, 5), 1);
  EXPECT_EQ(p.GpuFor(255, 0), 63);
  // E not a multiple of P: every expert placed once, blocks differ by at most one.
  Placement q = Placement::Contiguous(10, 4);
  std::vector<int> per_gpu(4, 0);
  for (int e = 0; e < 10; ++e) ++per_gpu[q.GpuFor(e, 0)];
  for (int n : per_gpu) EXPECT_TRUE(n == 2 || n == 3);
}

TEST(PlacementTest, MoreGpusThanExpertsReplicates) {
  Placement p = Placement::Contiguous(4, 8);
  EXPECT_EQ(p.Replicas(1), (std::vector<int>{2, 3}));
  EXPECT_EQ(p.GpuFor(1, 0), 2);
  EXPECT_EQ(p.GpuFor(1, 1), 3);
  EXPECT_THROW(Placement::Contiguous(3, 8), std::invalid_argument);
}

TEST(RoutingTest, TokensChooseDistinctExpertsAndCountsAreConserved) {
  Placement placement = Placement::Contiguous(16, 4);
  for (const char* spec : {"uniform", "zipf:1.5", "zipf:8", "hot:0.2"}) {
    RoutingPlan plan = SampleRouting(Params(spec, 300, 4, 1.0), placement, 0);
    EXPECT_EQ(plan.assignments, 4 * 300 * 4) << spec;
    EXPECT_EQ(Sum(plan.expert_kept) + Sum(plan.expert_dropped), plan.assignments) << spec;
    EXPECT_EQ(Sum(plan.expert_dropped), plan.dropped) << spec;
    int64_t computed = 0;
    for (int g = 0; g < 4; ++g) computed += plan.ExpertInputTokens(g);
    EXPECT_EQ(computed, Sum(plan.expert_kept)) << spec;
    // A token reaches a GPU at most once: per source, at most T tokens per destination,
    // and at least ceil(kept/experts-per-gpu) copies overall.
    for (int g = 0; g < 4; ++g)
      for (const auto& [dst, tokens] : plan.dispatch_tokens[g]) EXPECT_LE(tokens, 300) << spec;
  }
}

TEST(RoutingTest, DistinctExpertsUnderExtremeSkew) {
  // Zipf 20: nearly all mass on one expert. Top-8 of 8 experts must still pick all 8.
  Placement placement = Placement::Contiguous(8, 2);
  RoutingPlan plan = SampleRouting(Params("zipf:20", 50, 8, 0), placement, 0);
  for (int e = 0; e < 8; ++e) EXPECT_EQ(plan.expert_kept[e], 2 * 50) << e;
}

TEST(RoutingTest, DropsMatchClosedFormOnHandBuiltRouting) {
  // 2 GPUs x 4 experts, capacity 3 per (source, expert). GPU 0 sends 5 tokens, all to
  // experts {0, 2}: expert 0 and 2 each get 5, keep 3, drop 2. GPU 1 sends 2 tokens to {1, 3}.
  Placement placement = Placement::Contiguous(4, 2);
  std::vector<std::vector<std::vector<int>>> choices(2);
  for (int t = 0; t < 5; ++t) choices[0].push_back({0, 2});
  for (int t = 0; t < 2; ++t) choices[1].push_back({1, 3});
  RoutingPlan plan = PlanFromChoices(choices, placement, 3);
  EXPECT_EQ(plan.expert_kept, (std::vector<int64_t>{3, 2, 3, 2}));
  EXPECT_EQ(plan.expert_dropped, (std::vector<int64_t>{2, 0, 2, 0}));
  EXPECT_EQ(plan.dropped, 4);
  // Experts 0,1 on GPU 0; 2,3 on GPU 1. GPU 0's first 3 tokens go to GPU 0 (expert 0) and
  // GPU 1 (expert 2): one copy each; tokens 4 and 5 are fully dropped.
  EXPECT_EQ(plan.dispatch_tokens[0], (std::vector<std::pair<int, int64_t>>{{0, 3}, {1, 3}}));
  EXPECT_EQ(plan.dispatch_tokens[1], (std::vector<std::pair<int, int64_t>>{{0, 2}, {1, 2}}));
  EXPECT_EQ(plan.ExpertInputTokens(0), 3 + 2);
  EXPECT_EQ(plan.ExpertInputTokens(1), 3 + 2);
}

TEST(RoutingTest, DropByScoreDropsLowScoringPicksNotLateTokens) {
  // One source, experts 0 and 1 (each on its own GPU), capacity 2. Tokens (highest score
  // first): t0 {0, 1}, t1 {1, 0}, t2 {0, 1}. Each expert is asked 3 times.
  const Placement placement = Placement::Contiguous(2, 2);
  const std::vector<std::vector<std::vector<int>>> choices = {{{0, 1}, {1, 0}, {0, 1}}, {}};
  // By position: t2 loses both experts, so it is not sent at all.
  RoutingPlan by_position = PlanFromChoices(choices, placement, 2, 0, false);
  EXPECT_EQ(by_position.dropped, 2);
  EXPECT_EQ(by_position.dispatch_tokens[0], (std::vector<std::pair<int, int64_t>>{{0, 2}, {1, 2}}));
  // By score: expert 0 drops t1's second pick, expert 1 the later of t0/t2's second picks
  // (t2): every token keeps one expert and is still sent.
  RoutingPlan by_score = PlanFromChoices(choices, placement, 2, 0, true);
  EXPECT_EQ(by_score.dropped, 2);
  EXPECT_EQ(by_score.expert_kept, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(by_score.dispatch_tokens[0], (std::vector<std::pair<int, int64_t>>{{0, 2}, {1, 2}}));
  EXPECT_EQ(by_score.source_dropped[0], 2);
  int64_t sent = 0;
  for (const auto& [dst, tokens] : by_score.node_tokens[0]) sent += tokens;
  EXPECT_EQ(sent, 3);  // all three tokens reach the (single) node
  int64_t sent_by_position = 0;
  for (const auto& [dst, tokens] : by_position.node_tokens[0]) sent_by_position += tokens;
  EXPECT_EQ(sent_by_position, 2);
}

TEST(RoutingTest, DropByScoreKeepsCountsOfDropByPosition) {
  const Placement placement = Placement::Contiguous(64, 8);
  RoutingParams params;
  params.spec = RoutingSpec::Parse("zipf:1");
  params.tokens_per_gpu = 500;
  params.top_k = 4;
  params.capacity_factor = 1.0;
  params.seed = 9;
  const RoutingPlan position = SampleRouting(params, placement, 0);
  params.drop_by_score = true;
  const RoutingPlan score = SampleRouting(params, placement, 0);
  EXPECT_EQ(position.expert_kept, score.expert_kept);
  EXPECT_EQ(position.dropped, score.dropped);
  EXPECT_GT(position.dropped, 0);
}

TEST(RoutingTest, TokenGoesOnceToAGpuHoldingSeveralOfItsExperts) {
  Placement placement = Placement::Contiguous(4, 2);  // experts 0,1 on GPU 0
  RoutingPlan plan = PlanFromChoices({{{0, 1}}, {}}, placement, -1);
  EXPECT_EQ(plan.dispatch_tokens[0], (std::vector<std::pair<int, int64_t>>{{0, 1}}));
  EXPECT_EQ(plan.ExpertInputTokens(0), 2);
}

TEST(RoutingTest, CapacityClosedForm) {
  // ceil(1.25 * 4096 * 8 / 256) = 160 exactly, not 161.
  EXPECT_EQ(CapacityPerSource(Params("uniform", 4096, 8, 1.25), 256), 160);
  EXPECT_EQ(CapacityPerSource(Params("uniform", 100, 2, 1.0), 3), 67);
  EXPECT_EQ(CapacityPerSource(Params("uniform", 100, 2, 0), 3), -1);
}

TEST(RoutingTest, CapacityZeroFractionDropsAlmostAll) {
  Placement placement = Placement::Contiguous(64, 8);
  // cf so small that capacity = ceil(tiny) = 1 per (source, expert).
  RoutingPlan plan = SampleRouting(Params("uniform", 1000, 2, 1e-6), placement, 0);
  for (int e = 0; e < 64; ++e) EXPECT_LE(plan.expert_kept[e], 8);
}

TEST(RoutingTest, HotExpertGetsItsShare) {
  Placement placement = Placement::Contiguous(32, 4);
  const double share = 0.1;
  RoutingPlan plan = SampleRouting(Params("hot:0.1", 20000, 4, 0), placement, 0);
  int64_t max_load = 0;
  for (int64_t k : plan.expert_kept) max_load = std::max(max_load, k);
  const double expected = share * plan.assignments;
  // Binomial(n = 80000 tokens, p = share * k): 4 sigma.
  const double sigma = std::sqrt(80000 * 0.4 * 0.6);
  EXPECT_NEAR(max_load, expected, 4 * sigma);
}

TEST(RoutingTest, UniformIsBalanced) {
  Placement placement = Placement::Contiguous(64, 8);
  RoutingPlan plan = SampleRouting(Params("uniform", 8000, 8, 0), placement, 0);
  const double mean = plan.assignments / 64.0;  // 8000
  for (int64_t k : plan.expert_kept) EXPECT_NEAR(k, mean, 5 * std::sqrt(mean));
}

TEST(RoutingTest, DeterministicPerSeedAndStep) {
  Placement placement = Placement::Contiguous(32, 4);
  RoutingPlan a = SampleRouting(Params("zipf:1", 500, 4, 1.25, 3), placement, 2);
  RoutingPlan b = SampleRouting(Params("zipf:1", 500, 4, 1.25, 3), placement, 2);
  RoutingPlan c = SampleRouting(Params("zipf:1", 500, 4, 1.25, 3), placement, 3);
  RoutingPlan d = SampleRouting(Params("zipf:1", 500, 4, 1.25, 4), placement, 2);
  EXPECT_EQ(a.expert_kept, b.expert_kept);
  EXPECT_EQ(a.dispatch_tokens, b.dispatch_tokens);
  EXPECT_NE(a.expert_kept, c.expert_kept);
  EXPECT_NE(a.expert_kept, d.expert_kept);
}

TEST(RoutingTest, DriftRedrawsWhichExpertIsHotPerEpoch) {
  Placement placement = Placement::Contiguous(32, 4);
  auto hottest = [&](int epoch, int step) {
    RoutingParams p = Params("hot:0.2", 2000, 2, 0, 11);
    p.epoch = epoch;
    const RoutingPlan plan = SampleRouting(p, placement, step);
    return std::max_element(plan.expert_kept.begin(), plan.expert_kept.end()) - plan.expert_kept.begin();
  };
  EXPECT_EQ(hottest(0, 0), hottest(0, 7));  // same epoch, other step: same hot expert
  EXPECT_NE(hottest(0, 0), hottest(1, 0));  // next epoch: another one (for this seed)
  EXPECT_EQ(hottest(1, 0), hottest(1, 3));
}

TEST(RoutingTest, LogNormalTokensKeepTheMeanAndDriveAssignments) {
  RoutingParams p = Params("uniform", 1000, 2, 1.25, 3);
  p.token_sigma = 0.5;
  const std::vector<int> tokens = TokensPerSource(p, 4000, 0);
  double mean = 0;
  for (int t : tokens) mean += t;
  mean /= tokens.size();
  // Log-normal with mean 1000 and sigma 0.5: standard deviation 1000 sqrt(e^0.25 - 1) = 533;
  // the mean of 4000 draws is within 4 standard errors (34).
  EXPECT_NEAR(mean, 1000, 4 * 533 / std::sqrt(4000.0));
  EXPECT_EQ(tokens, TokensPerSource(p, 4000, 0));     // deterministic
  EXPECT_NE(tokens, TokensPerSource(p, 4000, 1));     // per step
  const Placement placement = Placement::Contiguous(32, 8);
  const RoutingPlan plan = SampleRouting(p, placement, 0);
  int64_t expected = 0;
  for (int g = 0; g < 8; ++g) expected += 2 * static_cast<int64_t>(plan.source_tokens[g]);
  EXPECT_EQ(plan.assignments, expected);
  EXPECT_EQ(plan.source_tokens, std::vector<int>(tokens.begin(), tokens.begin() + 8));
}

TEST(RoutingTest, FullBalanceMakesAnySkewUniform) {
  Placement placement = Placement::Contiguous(64, 8);
  RoutingParams p = Params("zipf:2", 8000, 8, 0);
  p.balance = 1.0;
  RoutingPlan plan = SampleRouting(p, placement, 0);
  const double mean = plan.assignments / 64.0;  // 8000
  for (int64_t k : plan.expert_kept) EXPECT_NEAR(k, mean, 5 * std::sqrt(mean));
  // Half way: the hottest expert's share is (1 - 0.5) p_max + 0.5 / E, far below Zipf 2's.
  p.balance = 0.5;
  RoutingPlan half = SampleRouting(p, placement, 0);
  p.balance = 0;
  RoutingPlan none = SampleRouting(p, placement, 0);
  EXPECT_LT(*std::max_element(half.expert_kept.begin(), half.expert_kept.end()),
            *std::max_element(none.expert_kept.begin(), none.expert_kept.end()));
}

TEST(RoutingTest, OneTokenAndAllToOneExpert) {
  Placement placement = Placement::Contiguous(4, 4);
  RoutingPlan plan = SampleRouting(Params("uniform", 1, 1, 0), placement, 0);
  EXPECT_EQ(plan.assignments, 4);
  RoutingPlan all = PlanFromChoices({{{3}, {3}}, {{3}}, {}, {}}, placement, -1);
  EXPECT_EQ(all.ExpertInputTokens(3), 3);
  EXPECT_EQ(all.dispatch_tokens[0], (std::vector<std::pair<int, int64_t>>{{3, 2}}));
}

}  // namespace
}  // namespace epsim
