// epsim kernel tests: the CPU reference against naive loops on random shapes, including the
// edges (one token, E not a multiple of P, every token on one expert, capacity 0).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/ep_ops.h"
#include "kernels/host_data.h"
#include "kernels/naive.h"
#include "kernels/random_data.h"

namespace epsim {
namespace kernels {
namespace {

ExecContext Threads(int n) {
  ExecContext ctx;
  ctx.num_threads = n;
  return ctx;
}

struct RouteCase {
  int64_t tokens;
  int64_t hidden;
  RouterConfig config;
  bool with_bias;
};

class RouteTest : public ::testing::TestWithParam<RouteCase> {};

TEST_P(RouteTest, MatchesNaive) {
  const RouteCase c = GetParam();
  const int e = c.config.num_experts, k = c.config.top_k;
  const std::vector<float> x = RandomVector(c.tokens * c.hidden, 1);
  const std::vector<float> gate = RandomVector(e * c.hidden, 2, 0.2f);
  const std::vector<float> bias = RandomVector(e, 3, 0.05f);
  std::vector<float> logits(c.tokens * e), weight(c.tokens * k);
  std::vector<int32_t> expert(c.tokens * k);
  cpu::Route(x.data(), gate.data(), c.with_bias ? bias.data() : nullptr, c.tokens, c.hidden,
             c.config, logits.data(), expert.data(), weight.data(), Threads(2));
  // The GEMM, within fp32 rounding.
  const std::vector<float> want_logits = naive::GateLogits(x, gate, c.tokens, c.hidden, e);
  EXPECT_LT(naive::MaxRelativeError(logits, want_logits, 1e-2), 1e-4);
  // The choice, exactly, from the same logits.
  std::vector<int32_t> want_expert;
  std::vector<float> want_weight;
  naive::Select(logits, c.with_bias ? bias.data() : nullptr, c.tokens, c.config, &want_expert,
                &want_weight);
  EXPECT_EQ(expert, want_expert);
  EXPECT_LT(naive::MaxRelativeError(weight, want_weight, 1e-6), 1e-5);
  // Distinct experts, from at most topk_groups groups, weights summing to the scale.
  const int size = e / c.config.num_groups;
  for (int64_t t = 0; t < c.tokens; ++t) {
    std::set<int> experts, groups;
    float sum = 0;
    for (int j = 0; j < k; ++j) {
      experts.insert(expert[t * k + j]);
      groups.insert(expert[t * k + j] / size);
      sum += weight[t * k + j];
    }
    EXPECT_EQ(static_cast<int>(experts.size()), k);
    EXPECT_LE(static_cast<int>(groups.size()), c.config.topk_groups);
    if (c.config.normalize_weights) {
      EXPECT_NEAR(sum, c.config.weight_scale, 1e-5);
    }
  }
}

RouterConfig Softmax(int e, int k) {
  RouterConfig c;
  c.num_experts = e;
  c.top_k = k;
  return c;
}

RouterConfig SigmoidGrouped(int e, int k, int groups, int topk_groups) {
  RouterConfig c;
  c.num_experts = e;
  c.top_k = k;
  c.num_groups = groups;
  c.topk_groups = topk_groups;
  c.score_func = ScoreFunc::kSigmoid;
  c.weight_scale = 2.5f;
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, RouteTest,
    ::testing::Values(RouteCase{1, 32, Softmax(8, 2), false},
                      RouteCase{37, 64, Softmax(16, 4), false},
                      RouteCase{5, 48, Softmax(7, 7), false},
                      RouteCase{1, 64, SigmoidGrouped(32, 6, 8, 3), true},
                      RouteCase{64, 96, SigmoidGrouped(64, 8, 8, 4), true},
                      RouteCase{33, 16, SigmoidGrouped(12, 2, 4, 1), false}));

struct LayoutCase {
  int64_t tokens;
  int top_k, experts, ranks;
  int64_t capacity;
  DropPolicy policy;
  bool one_hot;         // every token's first choice is expert 2
  bool shuffled_ranks;  // random placement instead of contiguous
};

class LayoutTest : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(LayoutTest, MatchesNaive) {
  const LayoutCase c = GetParam();
  std::vector<int32_t> expert;
  std::vector<float> weight;
  RandomChoices(c.tokens, c.top_k, c.experts, 11, &expert, &weight);
  if (c.one_hot) {
    for (int64_t t = 0; t < c.tokens; ++t)
      for (int j = 0; j < c.top_k; ++j) expert[t * c.top_k + j] = (2 + j) % c.experts;
  }
  std::vector<int32_t> rank(c.experts);
  for (int e = 0; e < c.experts; ++e)
    rank[e] = c.shuffled_ranks ? (e * 7 + 3) % c.ranks : ContiguousExpertRank(e, c.experts, c.ranks);
  const int64_t slots = c.tokens * c.top_k;
  LayoutBuffers got(slots, c.experts, c.ranks);
  const int64_t rows = cpu::DispatchLayout(expert.data(), weight.data(), rank.data(), c.tokens,
                                           c.top_k, c.experts, c.ranks, c.capacity, c.policy,
                                           got.Out(), Threads(2));
  const naive::Layout want = naive::DispatchLayout(expert, weight, rank, c.tokens, c.top_k,
                                                   c.experts, c.ranks, c.capacity, c.policy);
  ASSERT_EQ(rows, static_cast<int64_t>(want.row_to_slot.size()));
  got.row_to_slot.resize(rows);
  EXPECT_EQ(got.per_expert, want.num_tokens_per_expert);
  EXPECT_EQ(got.dropped, want.num_dropped_per_expert);
  EXPECT_EQ(got.expert_begin, want.expert_row_begin);
  EXPECT_EQ(got.copies_per_rank, want.num_copies_per_rank);
  EXPECT_EQ(got.tokens_per_rank, want.num_tokens_per_rank);
  EXPECT_EQ(got.rank_begin, want.rank_row_begin);
  EXPECT_EQ(got.slot_to_row, want.slot_to_row);
  EXPECT_EQ(got.row_to_slot, want.row_to_slot);
  const int64_t kept = std::accumulate(got.per_expert.begin(), got.per_expert.end(), int64_t{0});
  const int64_t dropped = std::accumulate(got.dropped.begin(), got.dropped.end(), int64_t{0});
  EXPECT_EQ(kept + dropped, slots);
  if (c.capacity == 0) {
    EXPECT_EQ(rows, 0);
  }
  if (c.capacity < 0) {
    EXPECT_EQ(dropped, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LayoutTest,
    ::testing::Values(
        LayoutCase{1, 2, 8, 4, kDropless, DropPolicy::kPosition, false, false},
        LayoutCase{50, 3, 10, 3, kDropless, DropPolicy::kPosition, false, false},
        LayoutCase{50, 3, 10, 3, 0, DropPolicy::kPosition, false, false},
        LayoutCase{50, 3, 10, 4, 9, DropPolicy::kPosition, false, false},
        LayoutCase{50, 3, 10, 4, 9, DropPolicy::kScore, false, false},
        LayoutCase{200, 4, 13, 5, 20, DropPolicy::kScore, false, true},
        LayoutCase{64, 2, 6, 4, 7, DropPolicy::kScore, true, false},
        LayoutCase{64, 2, 6, 4, kDropless, DropPolicy::kPosition, true, false},
        LayoutCase{3, 1, 5, 8, 1, DropPolicy::kPosition, false, false}));

TEST(ContiguousExpertRankTest, SpreadsRemainderOverFirstRanks) {
  std::vector<int> per_rank(4, 0);
  for (int e = 0; e < 10; ++e) ++per_rank[ContiguousExpertRank(e, 10, 4)];
  EXPECT_EQ(per_rank, (std::vector<int>{3, 3, 2, 2}));
  EXPECT_EQ(ContiguousExpertRank(9, 10, 4), 3);
  EXPECT_EQ(ContiguousExpertRank(2, 3, 8), 2);  // fewer experts than ranks
}

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f)), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(-2.5f)), -2.5f);
  const float x = 1.00390625f;  // halfway between two bf16 values: rounds to even (1.0)
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(x)), 1.0f);
  EXPECT_NEAR(Bf16ToFloat(FloatToBf16(3.14159f)), 3.14159f, 3.14159f / 128);
}

// E4M3's values by hand from its bit fields (OCP FP8 spec, table of E4M3 encodings).
TEST(HostDataTest, Fp8E4M3DecodesEveryKindOfValue) {
  EXPECT_EQ(Fp8E4M3ToFloat(0x38), 1.0f);         // 0.0111.000: 2^(7-7)
  EXPECT_EQ(Fp8E4M3ToFloat(0xC0), -2.0f);        // 1.1000.000
  EXPECT_EQ(Fp8E4M3ToFloat(0x3C), 1.5f);         // 0.0111.100: 1 + 4/8
  EXPECT_EQ(Fp8E4M3ToFloat(0x7E), 448.0f);       // 0.1111.110: the largest, 1.75 x 2^8
  EXPECT_EQ(Fp8E4M3ToFloat(0x08), 1.0f / 64);    // 0.0001.000: the smallest normal, 2^-6
  EXPECT_EQ(Fp8E4M3ToFloat(0x01), 1.0f / 512);   // 0.0000.001: the smallest subnormal, 2^-9
  EXPECT_EQ(Fp8E4M3ToFloat(0x07), 7.0f / 512);   // 0.0000.111
  EXPECT_EQ(Fp8E4M3ToFloat(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(Fp8E4M3ToFloat(0x80)));
  EXPECT_TRUE(std::isnan(Fp8E4M3ToFloat(0x7F)));
  EXPECT_TRUE(std::isnan(Fp8E4M3ToFloat(0xFF)));
  // Every other code is finite, and the positive ones increase with the code.
  for (int b = 1; b < 0x7F; ++b) EXPECT_LT(Fp8E4M3ToFloat(b - 1), Fp8E4M3ToFloat(b)) << b;
}

TEST(HostDataTest, TransposeEachTransposesEveryMatrix) {
  // Two 2 x 3 matrices.
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_EQ(TransposeEach(x, 2, 2, 3), (std::vector<float>{1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12}));
  EXPECT_EQ(TransposeEach(TransposeEach(x, 2, 2, 3), 2, 3, 2), x);
}

TEST(HostDataTest, Bf16VectorsRoundToNearestEven) {
  // 1 + 2^-8 lies halfway between the bf16 values 1 and 1 + 2^-7: it rounds to the even 1.
  const std::vector<float> x = {1.0f, 1.00390625f, -2.5f, 0.0f};
  EXPECT_EQ(FromBf16(ToBf16(x)), (std::vector<float>{1.0f, 1.0f, -2.5f, 0.0f}));
  EXPECT_EQ(ToBf16(x)[0], 0x3F80);  // 1.0f is 0x3F800000: its upper 16 bits
}

TEST(HostDataTest, NormalizedMaxErrorIsLargestDifferenceOverLargestReference) {
  // Differences 0, 0.5, 1; largest |reference| 4: 1 / 4.
  EXPECT_DOUBLE_EQ(NormalizedMaxError({1.0f, 2.5f, -3.0f}, {1.0f, 2.0f, -4.0f}), 0.25);
  EXPECT_DOUBLE_EQ(NormalizedMaxError({1.0f, 2.0f}, {1.0f, 2.0f}), 0.0);
}

TEST(HostDataTest, NormalizedMaxErrorFailsEveryLimitOnNanOrSizeMismatch) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(NormalizedMaxError({1.0f, nan}, {1.0f, 2.0f}) < 1e30);
  EXPECT_FALSE(NormalizedMaxError({1.0f}, {1.0f, 2.0f}) < 1e30);
}

TEST(HostDataTest, LayoutBuffersHoldEveryLayoutArray) {
  LayoutBuffers l(/*num_slots=*/6, /*num_experts=*/4, /*num_ranks=*/2);
  EXPECT_EQ(l.per_expert.size(), 4u);
  EXPECT_EQ(l.rank_begin.size(), 3u);  // P + 1 prefix sums
  EXPECT_EQ(l.row_to_slot.size(), 6u);
  const LayoutOut out = l.Out();
  EXPECT_EQ(out.num_tokens_per_expert, l.per_expert.data());
  EXPECT_EQ(out.num_dropped_per_expert, l.dropped.data());
  EXPECT_EQ(out.expert_row_begin, l.expert_begin.data());
  EXPECT_EQ(out.num_copies_per_rank, l.copies_per_rank.data());
  EXPECT_EQ(out.num_tokens_per_rank, l.tokens_per_rank.data());
  EXPECT_EQ(out.rank_row_begin, l.rank_begin.data());
  EXPECT_EQ(out.slot_to_row, l.slot_to_row.data());
  EXPECT_EQ(out.row_to_slot, l.row_to_slot.data());
}

// The whole layer on random data: CPU reference chain == naive chain.
struct LayerCase {
  int64_t tokens, hidden, ffn;
  int experts, top_k, ranks;
  int64_t capacity;
  int threads;
};

class LayerTest : public ::testing::TestWithParam<LayerCase> {};

TEST_P(LayerTest, PermuteExpertCombineMatchNaive) {
  const LayerCase c = GetParam();
  std::vector<int32_t> expert;
  std::vector<float> weight;
  RandomChoices(c.tokens, c.top_k, c.experts, 5, &expert, &weight);
  std::vector<int32_t> rank(c.experts);
  for (int e = 0; e < c.experts; ++e) rank[e] = ContiguousExpertRank(e, c.experts, c.ranks);
  const int64_t slots = c.tokens * c.top_k;
  LayoutBuffers l(slots, c.experts, c.ranks);
  const int64_t rows = cpu::DispatchLayout(expert.data(), weight.data(), rank.data(), c.tokens,
                                           c.top_k, c.experts, c.ranks, c.capacity,
                                           DropPolicy::kPosition, l.Out(), Threads(c.threads));
  const std::vector<float> x = RandomVector(c.tokens * c.hidden, 21);
  std::vector<float> permuted(std::max<int64_t>(rows, 1) * c.hidden);
  cpu::Permute(x.data(), l.row_to_slot.data(), rows, c.hidden, c.top_k, permuted.data(),
               Threads(c.threads));
  permuted.resize(rows * c.hidden);
  std::vector<int32_t> row_to_slot(l.row_to_slot.begin(), l.row_to_slot.begin() + rows);
  EXPECT_EQ(permuted, naive::Permute(x, row_to_slot, c.hidden, c.top_k));

  const std::vector<float> w1 = RandomVector(c.experts * c.hidden * 2 * c.ffn, 22, 0.1f);
  const std::vector<float> w2 = RandomVector(c.experts * c.ffn * c.hidden, 23, 0.1f);
  std::vector<float> expert_out(rows * c.hidden), workspace(std::max<int64_t>(rows, 1) * 3 * c.ffn);
  cpu::ExpertFfn(permuted.data(), l.per_expert.data(), l.expert_begin.data(), c.experts,
                 c.hidden, c.ffn, w1.data(), w2.data(), expert_out.data(), workspace.data(),
                 Threads(c.threads));
  const std::vector<float> want_out =
      naive::ExpertFfn(permuted, l.per_expert, l.expert_begin, c.hidden, c.ffn, w1, w2);
  EXPECT_LT(naive::MaxRelativeError(expert_out, want_out, 1e-2), 1e-3);

  std::vector<float> out(c.tokens * c.hidden);
  cpu::Combine(expert_out.data(), l.slot_to_row.data(), weight.data(), c.tokens, c.top_k,
               c.hidden, out.data(), Threads(c.threads));
  const std::vector<float> want =
      naive::Combine(expert_out, l.slot_to_row, weight, c.tokens, c.top_k, c.hidden);
  EXPECT_LT(naive::MaxRelativeError(out, want, 1e-3), 1e-5);
  // Never compared on zeros: the inputs and outputs carry signal.
  if (rows > 0) {
    EXPECT_GT(*std::max_element(out.begin(), out.end()), 0.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerTest,
                         ::testing::Values(LayerCase{1, 32, 16, 4, 2, 2, kDropless, 2},
                                           LayerCase{45, 64, 48, 10, 3, 4, kDropless, 2},
                                           LayerCase{45, 64, 48, 10, 3, 4, 8, 3},
                                           LayerCase{45, 64, 48, 10, 3, 4, 0, 2},
                                           LayerCase{300, 40, 24, 6, 2, 3, kDropless, 1}));

TEST(RouteTest, RejectsBadConfigNamingTheField) {
  RouterConfig c = SigmoidGrouped(12, 2, 5, 1);  // 5 does not divide 12
  std::vector<float> x(4), gate(48), logits(12), w(2);
  std::vector<int32_t> e(2);
  try {
    cpu::Route(x.data(), gate.data(), nullptr, 1, 4, c, logits.data(), e.data(), w.data(), Threads(1));
    FAIL() << "expected KernelError";
  } catch (const KernelError& err) {
    EXPECT_NE(std::string(err.what()).find("num_groups"), std::string::npos) << err.what();
  }
}

TEST(LayoutTest, RejectsExpertOutOfRange) {
  std::vector<int32_t> expert = {0, 9}, rank(4, 0);
  std::vector<float> weight = {1, 1};
  LayoutBuffers l(2, 4, 1);
  EXPECT_THROW(cpu::DispatchLayout(expert.data(), weight.data(), rank.data(), 1, 2, 4, 1,
                                   kDropless, DropPolicy::kPosition, l.Out(), Threads(1)),
               KernelError);
}

}  // namespace
}  // namespace kernels
}  // namespace epsim
