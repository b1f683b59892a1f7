// epsim tests: routing sampler, placement, capacity drops and traffic counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"
#include "common/parallel.h"
#include "sim/workload/placement.h"
#include "sim/workload/routing_plan.h"
#include "sim/workload/routing_spec.h"
#include "sim/workload/routing_trace.h"
#include "sim/workload/sampler.h"

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

// Every field of two plans, for "these steps are exactly the same".
void ExpectSamePlan(const RoutingPlan& a, const RoutingPlan& b, const std::string& what) {
  EXPECT_EQ(a.source_tokens, b.source_tokens) << what;
  EXPECT_EQ(a.assignments, b.assignments) << what;
  EXPECT_EQ(a.dropped, b.dropped) << what;
  EXPECT_EQ(a.expert_kept, b.expert_kept) << what;
  EXPECT_EQ(a.expert_dropped, b.expert_dropped) << what;
  EXPECT_EQ(a.source_dropped, b.source_dropped) << what;
  EXPECT_EQ(a.gpu_expert_tokens, b.gpu_expert_tokens) << what;
  EXPECT_EQ(a.dispatch_tokens, b.dispatch_tokens) << what;
  EXPECT_EQ(a.dispatch_pairs, b.dispatch_pairs) << what;
  EXPECT_EQ(a.node_tokens, b.node_tokens) << what;
}

std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::string path = std::string(::testing::TempDir()) + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
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

TEST(RoutingTest, SampledChoicesCondenseToTheSampledPlan) {
  // SampleTokenChoices hands out exactly the tokens SampleRouting counts: condensing them with
  // PlanFromChoices (one copy per expert, so one capacity for all) gives the same plan.
  const Placement placement = Placement::Contiguous(32, 8);
  for (bool by_score : {false, true}) {
    RoutingParams p = Params("zipf:1", 400, 4, 1.0, 5);
    p.drop_by_score = by_score;
    const auto choices = SampleTokenChoices(p, placement, 3);
    ASSERT_EQ(choices.size(), 8u);
    for (const auto& source : choices) {
      ASSERT_EQ(source.size(), 400u);
      for (const auto& token : source) {
        EXPECT_EQ(token.size(), 4u);
        EXPECT_EQ(std::set<int>(token.begin(), token.end()).size(), 4u);  // distinct
      }
    }
    ExpectSamePlan(PlanFromChoices(choices, placement, CapacityPerSource(p, 32), 0, by_score),
                   SampleRouting(p, placement, 3), by_score ? "by score" : "by position");
  }
}

// ---- bursts -------------------------------------------------------------------------------

TEST(BurstTest, BurstStepsAndExperts) {
  RoutingParams p = Params("uniform", 10, 2, 0);
  EXPECT_EQ(BurstExpert(p, 32, 4), -1);  // no bursts configured
  p.burst_every = 5;
  p.burst_share = 0.1;
  for (int step = 0; step < 20; ++step) {
    const int expert = BurstExpert(p, 32, step);
    if ((step + 1) % 5 == 0) {
      EXPECT_GE(expert, 0) << step;  // steps 4, 9, 14, 19
      EXPECT_LT(expert, 32) << step;
    } else {
      EXPECT_EQ(expert, -1) << step;
    }
  }
  EXPECT_EQ(BurstExpert(p, 32, 9), BurstExpert(p, 32, 9));  // deterministic
  std::set<int> drawn;  // a fresh draw per burst: 20 bursts do not all hit one expert
  for (int burst = 1; burst <= 20; ++burst) drawn.insert(BurstExpert(p, 32, 5 * burst - 1));
  EXPECT_GT(drawn.size(), 1u);
}

TEST(BurstTest, BurstExpertGetsTheClosedFormShare) {
  // Uniform over E = 32, top-4, S = 0.1: the burst expert's share of the assignments is
  // (1 - S) / E + S = 0.128125, so it joins a token with probability 4 x 0.128125 = 0.5125:
  // Binomial(80 000 tokens, 0.5125), mean 41 000, sigma 141. Every other expert gets
  // (1 - S) / E of 320 000 assignments = 9 000 on average.
  const Placement placement = Placement::Contiguous(32, 4);
  RoutingParams p = Params("uniform", 20000, 4, 0, 3);
  p.burst_every = 5;
  p.burst_share = 0.1;
  const int step = 4;
  const int burst = BurstExpert(p, 32, step);
  ASSERT_GE(burst, 0);
  const RoutingPlan plan = SampleRouting(p, placement, step);
  EXPECT_EQ(plan.assignments, 320'000);
  EXPECT_NEAR(plan.expert_kept[burst], 41'000, 4 * std::sqrt(80000 * 0.5125 * 0.4875));
  for (int e = 0; e < 32; ++e)
    if (e != burst) { EXPECT_NEAR(plan.expert_kept[e], 9'000, 5 * std::sqrt(9000.0)) << e; }
}

TEST(BurstTest, BurstOnTopOfAHotExpert) {
  // hot:0.1 over 32 experts, top-4, a burst of S = 0.1 on every step. The hot expert keeps
  // (1 - S) 0.1 = 0.09 of the assignments; the burst expert (another one) gets
  // (1 - S) (0.9 / 31) + S = 0.126129. 80 000 tokens: 4-sigma bands of the binomials.
  const Placement placement = Placement::Contiguous(32, 4);
  RoutingParams p = Params("hot:0.1", 20000, 4, 0, 3);
  const RoutingPlan calm = SampleRouting(p, placement, 0);
  const int hot = static_cast<int>(std::max_element(calm.expert_kept.begin(), calm.expert_kept.end()) -
                                   calm.expert_kept.begin());
  p.burst_every = 1;
  p.burst_share = 0.1;
  int step = 0;
  while (BurstExpert(p, 32, step) == hot) ++step;  // a step where another expert bursts
  const int burst = BurstExpert(p, 32, step);
  const RoutingPlan plan = SampleRouting(p, placement, step);
  auto band = [](double q) { return 4 * std::sqrt(80000 * 4 * q * (1 - 4 * q)); };
  const double burst_share = 0.9 * 0.9 / 31 + 0.1;
  EXPECT_NEAR(plan.expert_kept[burst], 320'000 * burst_share, band(burst_share));
  EXPECT_NEAR(plan.expert_kept[hot], 320'000 * 0.09, band(0.09));
}

TEST(BurstTest, TopOneTokensStillTakeOneExpert) {
  // Top-1, hot:0.3 over 8 experts, burst S = 0.5 on another expert: shares 0.5 x 0.7 / 7 +
  // 0.5 = 0.55 (burst), 0.5 x 0.3 = 0.15 (hot), 0.5 x 0.1 = 0.05 (each of the other six).
  const Placement placement = Placement::Contiguous(8, 2);
  RoutingParams p = Params("hot:0.3", 40000, 1, 0, 8);
  const RoutingPlan calm = SampleRouting(p, placement, 0);
  const int hot = static_cast<int>(std::max_element(calm.expert_kept.begin(), calm.expert_kept.end()) -
                                   calm.expert_kept.begin());
  p.burst_every = 1;
  p.burst_share = 0.5;
  int step = 0;
  while (BurstExpert(p, 8, step) == hot) ++step;
  const int burst = BurstExpert(p, 8, step);
  const RoutingPlan plan = SampleRouting(p, placement, step);
  EXPECT_EQ(plan.assignments, 80'000);  // one expert per token, never two
  auto band = [](double q) { return 4 * std::sqrt(80000 * q * (1 - q)); };
  EXPECT_NEAR(plan.expert_kept[burst], 80'000 * 0.55, band(0.55));
  EXPECT_NEAR(plan.expert_kept[hot], 80'000 * 0.15, band(0.15));
  for (int e = 0; e < 8; ++e)
    if (e != burst && e != hot) { EXPECT_NEAR(plan.expert_kept[e], 80'000 * 0.05, band(0.05)) << e; }
}

TEST(BurstTest, OtherStepsAreExactlyTheRunWithoutBursts) {
  const Placement placement = Placement::Contiguous(32, 8);
  for (const char* spec : {"zipf:1", "hot:0.1"}) {
    RoutingParams calm = Params(spec, 300, 4, 1.25, 21);
    calm.drop_by_score = true;
    RoutingParams bursty = calm;
    bursty.burst_every = 3;
    bursty.burst_share = 0.2;
    for (int step = 0; step < 9; ++step) {
      const RoutingPlan a = SampleRouting(calm, placement, step);
      const RoutingPlan b = SampleRouting(bursty, placement, step);
      if ((step + 1) % 3 == 0) {
        EXPECT_NE(a.expert_kept, b.expert_kept) << spec << " step " << step;
      } else {
        ExpectSamePlan(a, b, std::string(spec) + " step " + std::to_string(step));
      }
    }
  }
}

TEST(BurstTest, NodeLimitedBurstStaysWithinTheNodes) {
  // 4 nodes of 2 GPUs, 4 experts per GPU; node limit 2. The burst expert draws far more
  // than its 1/32 while every token still uses at most 2 nodes.
  const Placement placement = Placement::Contiguous(32, 8);
  RoutingParams p = Params("uniform", 2000, 4, 0, 4);
  p.gpus_per_node = 2;
  p.node_limit = 2;
  p.burst_every = 2;
  p.burst_share = 0.2;
  const int burst = BurstExpert(p, 32, 1);
  const auto choices = SampleTokenChoices(p, placement, 1);
  int64_t burst_picks = 0, picks = 0;
  for (size_t g = 0; g < choices.size(); ++g) {
    for (const auto& token : choices[g]) {
      std::set<int> nodes;
      for (int e : token) {
        nodes.insert(placement.GpuFor(e, static_cast<int>(g)) / 2);
        burst_picks += e == burst;
        ++picks;
      }
      EXPECT_LE(nodes.size(), 2u);
    }
  }
  EXPECT_GT(burst_picks, 3 * picks / 32);
}

// ---- routing traces -----------------------------------------------------------------------

// tests/testdata/token_trace_tiny.csv, top-2 over 4 experts:
//   file step 0: A = {0, 1}, B = {2, 3} (quoted), C = {0, 2};  file step 1: D = {3, 1}.
RoutingParams TinyTraceParams(int tokens, double cf) {
  RoutingParams p = Params("trace:tests/testdata/token_trace_tiny.csv", tokens, 2, cf);
  LoadRoutingTrace(p.spec, p.spec.trace_path, 4, 2);
  return p;
}

// The plan of SampleRouting, which splits the sources over `threads` threads.
RoutingPlan SampleOnThreads(const RoutingParams& p, const Placement& placement, int step, int threads) {
  SetWorkerThreads(threads);
  RoutingPlan plan = SampleRouting(p, placement, step);
  SetWorkerThreads(Cores());
  return plan;
}

TEST(RoutingTest, AnyThreadCountGivesThePlanOfOnePassOverTheTokens) {
  // The reference is one pass over the sampled tokens (PlanFromChoices), which no thread
  // splits: dropping by position and by score, node-limited routing, a token trace whose
  // tokens wrap across the sources (4 GPUs, 2 tokens per GPU, 3 in the file step).
  const Placement placement = Placement::Contiguous(32, 8);
  RoutingParams by_position = Params("zipf:1", 300, 4, 1.0, 5), by_score = by_position;
  by_score.drop_by_score = true;
  RoutingParams node_limited = Params("zipf:1", 300, 4, 0, 6);
  node_limited.gpus_per_node = 2;
  node_limited.node_limit = 2;
  const struct {
    const char* name;
    RoutingParams params;
    Placement placement;
    int64_t capacity;
  } cases[] = {{"by position", by_position, placement, CapacityPerSource(by_position, 32)},
               {"by score", by_score, placement, CapacityPerSource(by_score, 32)},
               {"node-limited", node_limited, placement, -1},
               {"token trace", TinyTraceParams(2, 0), Placement::Contiguous(4, 4), -1}};
  for (const auto& c : cases) {
    const RoutingPlan one_pass = PlanFromChoices(SampleTokenChoices(c.params, c.placement, 1), c.placement, c.capacity,
                                                 c.params.gpus_per_node, c.params.drop_by_score);
    for (const int threads : {1, 2, 3, 8})
      ExpectSamePlan(SampleOnThreads(c.params, c.placement, 1, threads), one_pass,
                     std::string(c.name) + ", " + std::to_string(threads) + " threads");
  }
  // Per-source token counts (capacity follows each source's count) and replicated experts
  // (64 GPUs, 16 experts): against one thread.
  RoutingParams varied = Params("zipf:1.2", 200, 4, 1.0, 8);
  varied.token_sigma = 0.5;
  varied.gpus_per_node = 8;
  const Placement replicated = Placement::Contiguous(16, 64);
  const RoutingPlan serial = SampleOnThreads(varied, replicated, 0, 1);
  for (const int threads : {2, 5, 64}) ExpectSamePlan(SampleOnThreads(varied, replicated, 0, threads), serial, "varied tokens");
}

TEST(TokenTraceTest, LoadsTheTinyTrace) {
  const RoutingParams p = TinyTraceParams(2, 0);
  EXPECT_TRUE(p.spec.IsTokenTrace());
  EXPECT_EQ(p.spec.TraceSteps(), 2);
  EXPECT_EQ(p.spec.trace_choices, (std::vector<int32_t>{0, 1, 2, 3, 0, 2, 3, 1}));
  EXPECT_EQ(p.spec.trace_step_begin, (std::vector<int64_t>{0, 3, 4}));
  EXPECT_EQ(p.spec.ToString(), "trace:tests/testdata/token_trace_tiny.csv");
}

TEST(TokenTraceTest, ALargerRunTakesTheFileTokensInOrderByHand) {
  // 2 GPUs x 2 tokens, experts 0, 1 on GPU 0 and 2, 3 on GPU 1. Step 0 takes file step 0's
  // 3 tokens in order, wrapping: GPU 0 gets A, B; GPU 1 gets C and (index 3 mod 3 = 0) A.
  // Expert counts: 0: A, C, A = 3; 1: A, A = 2; 2: B, C = 2; 3: B = 1.
  // Dispatch (a token once per GPU): GPU 0 sends A to GPU 0, B to GPU 1; GPU 1 sends C to
  // both GPUs and A to GPU 0.
  const Placement placement = Placement::Contiguous(4, 2);
  const RoutingPlan plan = SampleRouting(TinyTraceParams(2, 0), placement, 0);
  EXPECT_EQ(plan.assignments, 8);
  EXPECT_EQ(plan.expert_kept, (std::vector<int64_t>{3, 2, 2, 1}));
  EXPECT_EQ(plan.dispatch_tokens[0], (std::vector<std::pair<int, int64_t>>{{0, 1}, {1, 1}}));
  EXPECT_EQ(plan.dispatch_tokens[1], (std::vector<std::pair<int, int64_t>>{{0, 2}, {1, 1}}));
  EXPECT_EQ(plan.dispatch_pairs[1], (std::vector<std::pair<int, int64_t>>{{0, 3}, {1, 1}}));
  // Step 1 is file step 1 (every token D = {3, 1}); step 2 wraps to file step 0.
  const RoutingPlan one = SampleRouting(TinyTraceParams(2, 0), placement, 1);
  EXPECT_EQ(one.expert_kept, (std::vector<int64_t>{0, 4, 0, 4}));
  EXPECT_EQ(one.dispatch_tokens[1], (std::vector<std::pair<int, int64_t>>{{0, 2}, {1, 2}}));
  ExpectSamePlan(SampleRouting(TinyTraceParams(2, 0), placement, 2), plan, "step 2 = file step 0");
}

TEST(TokenTraceTest, CapacityAndDropPolicyApply) {
  // cf 1: ceil(1 x 2 x 2 / 4) = 1 assignment per (source, expert). GPU 1 asks expert 0
  // twice (C, then A): A's pick is dropped, so expert 0 keeps 2 of 3. The same plan as the
  // hand-built choices through PlanFromChoices.
  const Placement placement = Placement::Contiguous(4, 2);
  const RoutingPlan plan = SampleRouting(TinyTraceParams(2, 1.0), placement, 0);
  EXPECT_EQ(plan.expert_kept, (std::vector<int64_t>{2, 2, 2, 1}));
  EXPECT_EQ(plan.expert_dropped, (std::vector<int64_t>{1, 0, 0, 0}));
  EXPECT_EQ(plan.source_dropped, (std::vector<int64_t>{0, 1}));
  const std::vector<int> a = {0, 1}, b = {2, 3}, c = {0, 2};
  ExpectSamePlan(plan, PlanFromChoices({{a, b}, {c, a}}, placement, 1), "hand-built");
  RoutingParams score = TinyTraceParams(2, 1.0);
  score.drop_by_score = true;
  ExpectSamePlan(SampleRouting(score, placement, 0), PlanFromChoices({{a, b}, {c, a}}, placement, 1, 0, true),
                 "by score");
}

TEST(TokenTraceTest, RefusesWhatWouldReshapeTheChoices) {
  const Placement placement = Placement::Contiguous(4, 2);
  RoutingParams p = TinyTraceParams(2, 0);
  p.node_limit = 1;
  p.gpus_per_node = 1;
  EXPECT_THROW(SampleRouting(p, placement, 0), std::invalid_argument);
  p = TinyTraceParams(2, 0);
  p.top_k = 1;
  EXPECT_THROW(SampleRouting(p, placement, 0), std::invalid_argument);
  p = TinyTraceParams(2, 0);
  p.burst_every = 2;
  p.burst_share = 0.1;
  EXPECT_THROW(SampleRouting(p, placement, 0), std::invalid_argument);
}

// The one-line error LoadRoutingTrace gives for `text` (top-2 over 4 experts), after the
// file's path it starts with.
std::string TraceError(const std::string& text) {
  RoutingSpec spec;
  const std::string path = WriteTemp("bad_trace.csv", text);
  try {
    LoadRoutingTrace(spec, path, 4, 2);
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.file(), path);
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_EQ(what.rfind(path + ": ", 0), 0u) << what;
    return what.substr(path.size() + 2);
  }
  ADD_FAILURE() << "no error for: " << text;
  return "";
}

TEST(TokenTraceTest, BadFilesNameLineColumnAndValue) {
  const std::string header = "step,gpu,token,experts\n";
  EXPECT_EQ(TraceError(header + "0,0,0,1 2 3\n"),
            "line 2: experts: '1 2 3': expected 2 experts (model.top_k), found 3");
  EXPECT_EQ(TraceError(header + "0,0,0,1 2\n0,0,1,\"3\"\n"),
            "line 3: experts: '3': expected 2 experts (model.top_k), found 1");
  EXPECT_EQ(TraceError(header + "0,0,0,1 4\n"), "line 2: experts: '4': expected an expert id in [0, 3] (model.experts = 4)");
  EXPECT_EQ(TraceError(header + "0,0,0,2 2\n"),
            "line 2: experts: '2 2': expert 2 appears twice (a token's experts are distinct)");
  EXPECT_EQ(TraceError(header + "0,0,1 2\n"),
            "line 2: row: '0,0,1 2': expected 4 columns (step,gpu,token,experts; experts separated by "
            "spaces), found 3");
  // A quoted comma is part of the field (CSV), here of a list that is not ids.
  EXPECT_EQ(TraceError(header + "0,0,0,\"1,2\"\n"),
            "line 2: experts: '1,2': expected an expert id in [0, 3] (model.experts = 4)");
  EXPECT_EQ(TraceError(header + std::string(100, '7') + "\n"),
            "line 2: row: '" + std::string(57, '7') + "...': expected 4 columns (step,gpu,token,experts; "
            "experts separated by spaces), found 1");
  EXPECT_EQ(TraceError(header + "0,x,0,1 2\n"), "line 2: gpu: 'x': expected a whole number in [0, 1048576]");
  EXPECT_EQ(TraceError(header + "0,0,0,1 two\n"), "line 2: experts: 'two': expected an expert id in [0, 3] (model.experts = 4)");
  EXPECT_EQ(TraceError(header + "0,0,0,\"1 2\n"), "line 2: row: '0,0,0,\"1 2': unterminated quote");
  EXPECT_EQ(TraceError(header + "0,0,0,1 2\n0,0,0,1 3\n"),
            "line 3: token: '0': repeats the previous row's token (each token once per step)");
  EXPECT_EQ(TraceError(header + "0,1,0,1 2\n0,0,5,1 3\n"),
            "line 3: gpu: '0': rows of a step must be ordered by gpu, then token");
  EXPECT_EQ(TraceError(header + "0,0,0,1 2\n2,0,0,1 3\n"),
            "line 3: step: '2': rows must be ordered by step, numbered from 0 without gaps");
  EXPECT_EQ(TraceError(header + "1,0,0,1 2\n"),
            "line 2: step: '1': rows must be ordered by step, numbered from 0 without gaps");
  EXPECT_EQ(TraceError(""),
            "line 1: header: empty file: expected the header 'step,expert,tokens' (expert counts) or "
            "'step,gpu,token,experts' (per-token choices)");
  EXPECT_EQ(TraceError(header), "no rows after the header");
  EXPECT_EQ(TraceError("step,gpu,tokens,experts\n0,0,0,1 2\n"),
            "line 1: header: 'step,gpu,tokens,experts': expected 'step,expert,tokens' (expert "
            "counts), 'step,layer,expert,tokens' (expert counts per layer) or 'step,gpu,token,experts' "
            "(per-token choices)");
  // The counts form keeps its errors.
  EXPECT_EQ(TraceError("step,expert,tokens\n0,9,5\n"), "line 2: expert: '9': expected a whole number in [0, 3]");
}

TEST(TokenTraceTest, WindowsLineEndsAndUnquotedListsLoad) {
  RoutingSpec spec;
  LoadRoutingTrace(spec, WriteTemp("crlf.csv", "step,gpu,token,experts\r\n0,0,0,3 1\r\n0,0,1,\"0 2\"\r\n"), 4, 2);
  EXPECT_EQ(spec.trace_choices, (std::vector<int32_t>{3, 1, 0, 2}));
  EXPECT_EQ(spec.TraceSteps(), 1);
}

TEST(TokenTraceTest, FilesTooLargeOrNotFilesAreRefusedBeforeReading) {
  RoutingSpec spec;
  const std::string big = WriteTemp("big.csv", "step,gpu,token,experts\n");
  std::filesystem::resize_file(big, kMaxRoutingTraceBytes + 1);  // sparse: nothing is written
  try {
    LoadRoutingTrace(spec, big, 4, 2);
    ADD_FAILURE() << "no error for a file over the limit";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.why(), "too large for a routing trace (more than 16777216 bytes)");
  }
  EXPECT_THROW(LoadRoutingTrace(spec, ::testing::TempDir(), 4, 2), ConfigError);
  EXPECT_THROW(LoadRoutingTrace(spec, "does/not/exist.csv", 4, 2), ConfigError);
}

// Counts with a layer column: each layer's steps of its own; stack layer l takes the file's
// layer l mod (layers in the file).
TEST(CountTraceTest, LayerColumnGivesEachLayerItsCounts) {
  RoutingSpec spec;
  LoadRoutingTrace(spec, WriteTemp("layers.csv", "step,layer,expert,tokens\n0,0,0,5\n0,1,3,7\n1,0,2,1\n0,1,1,2\n"), 4);
  ASSERT_TRUE(spec.IsLayeredTrace());
  ASSERT_EQ(spec.trace_layer_weights.size(), 2u);
  EXPECT_EQ(spec.trace_weights, (std::vector<std::vector<double>>{{5, 0, 0, 0}, {0, 0, 1, 0}}));  // layer 0's
  const RoutingSpec one = spec.ForLayer(1), three = spec.ForLayer(3), two = spec.ForLayer(2);
  EXPECT_EQ(one.trace_weights, (std::vector<std::vector<double>>{{0, 2, 0, 7}}));
  EXPECT_EQ(three.trace_weights, one.trace_weights);
  EXPECT_EQ(two.trace_weights, spec.trace_weights);
  EXPECT_FALSE(one.IsLayeredTrace());
  EXPECT_EQ(one.TraceSteps(), 1);
  EXPECT_EQ(one.ToString(), "trace:" + ::testing::TempDir() + "/layers.csv layer 1");
  const std::string header = "step,layer,expert,tokens\n";
  EXPECT_EQ(TraceError(header + "0,1,0,5\n"), "line 2: layer: '1': layers must be numbered from 0 without gaps");
  EXPECT_EQ(TraceError(header + "0,0,0,5\n0,1,0,5\n2,1,0,5\n"),
            "line 4: step: '2': each layer's steps must be numbered from 0 without gaps");
  EXPECT_EQ(TraceError(header + "0,0,0,5\n0,1,2,0\n"), "layer 1 step 0 has no tokens");
  EXPECT_EQ(TraceError(header + "0,0,0,5,1\n"), "line 2: row: '0,0,0,5,1': expected 4 columns (step,layer,expert,tokens)");
  EXPECT_EQ(TraceError(header + "0,x,0,5\n"), "line 2: layer: 'x': expected a whole number in [0, 100000]");
}

TEST(TokenTraceTest, CountTracesAreBoundedInSteps) {
  // 2^23 + 1 experts: step 0 takes 2^23 + 1 counts, step 1 would pass 2^24.
  RoutingSpec spec;
  try {
    LoadRoutingTrace(spec, WriteTemp("steps.csv", "step,expert,tokens\n0,0,1\n1,0,1\n"), (1 << 23) + 1);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "line 3: step");
    EXPECT_EQ(e.why().substr(0, 20), "too many steps for 8") << e.what();
  }
}

}  // namespace
}  // namespace epsim
