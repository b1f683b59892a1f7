// epsim tests: the compute costs of the layer's passes (sim/engine/cost_model.h) on a made-up
// roofline profile with round rates, against closed forms: attention (projections and core,
// prefill and decode, forward and backward; grouped-query and latent) and the experts' backward.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "calibrate/profile/op_work.h"
#include "calibrate/profile/profile.h"
#include "sim/engine/cost_model.h"

namespace epsim {
namespace {

// 1000 TFLOP/s and 2 TB/s with no floor and no small-M penalty: a time is max(FLOPs /
// 1e15, bytes / 2e12).
Profile RoundProfile() {
  Profile p;
  p.file = "round.yaml";
  for (const char* op : {"route", "permute", "expert", "combine"}) {
    OpModel m;
    m.name = op;
    m.flop_rate_Fps = 1e15;
    m.mem_rate_Bps = 2e12;
    p.ops[op] = m;
  }
  return p;
}

double Roofline(double flops, double bytes) { return std::max(flops / 1e15, bytes / 2e12); }

LayerShape Shape(bool decode) {
  LayerShape s;
  s.hidden = 4096;
  s.expert_ffn = 1024;
  s.num_experts = 8;
  s.top_k = 2;
  s.attention = {4096, 32, 8, 128};  // grouped-query: 32 query heads, 8 key/value heads of 128
  s.kv_cache = decode;
  s.context = decode ? 8192 : (8192 + 1) / 2.0;
  return s;
}

TEST(CostModelTest, AttentionIsItsProjectionsAndCore) {
  const Profile profile = RoundProfile();
  const double t = 512, h = 4096, d = 128, heads = 32, kv = 8;
  // QKV: t x h by h x (32 + 16) 128; output: t x 4096 by 4096 x h: bf16 weights, inputs, outputs.
  const double qkv_n = (heads + 2 * kv) * d, o_k = heads * d;
  const double projections = Roofline(2 * t * h * qkv_n, 2 * (qkv_n * h + t * h + t * qkv_n)) +
                             Roofline(2 * t * o_k * h, 2 * (h * o_k + t * o_k + t * h));
  for (const bool decode : {false, true}) {
    CostModel costs(profile, Shape(decode));
    const double context = decode ? 8192 : 4096.5;
    // Core: 4 t context heads d FLOPs; Q and O (t heads d each, bf16) and K and V: the
    // tokens' own (t kv d each) or a cache of `context` tokens per token.
    const double kv_tokens = decode ? t * context : t;
    const double core = Roofline(4 * t * context * heads * d, 2 * 2 * t * heads * d + 2 * 2 * kv_tokens * kv * d);
    EXPECT_NEAR(costs.AttentionS(512, false), projections + core, 1e-15) << decode;
    EXPECT_NEAR(costs.AttentionS(512, true), 2 * projections + 2.5 * core, 1e-15) << decode;
  }
  // Decode reads 8192 cached tokens per token: memory-bound, 2 x 2 x 512 x 8192 x 8 x 128 bytes.
  CostModel decode(profile, Shape(true));
  EXPECT_GT(decode.AttentionS(512, false) - projections, 2 * 2 * 512.0 * 8192 * 8 * 128 / 2e12);
  // Without heads nothing is costed.
  LayerShape none = Shape(false);
  none.attention = {};
  EXPECT_EQ(CostModel(profile, none).AttentionS(512, false), 0);
}

// Multi-head latent attention (DeepSeek-V3's shape scaled down: 32 heads of 128 + 64 RoPE, a
// key/value latent of 512, a query latent of 1536) on the round roofline. Each bf16 GEMM of
// t rows costs Roofline(2 t N K, 2 (N K + t K + t N)); per head, `heads` of them summed.
TEST(CostModelTest, LatentAttentionIsItsProjectionsAndCore) {
  const Profile profile = RoundProfile();
  const double t = 512, h = 4096, heads = 32, d = 128, r = 64, c = 512, q = 1536;
  auto gemm = [&](double n, double k, double groups = 1) {
    return Roofline(groups * 2 * t * n * k, groups * 2 * (n * k + t * k + t * n));
  };
  // Both: queries down to 1536 and up to heads (d + r), the latent and RoPE key (c + r) from
  // the hidden state, and the output from heads d.
  const double common = gemm(q, h) + gemm(heads * (d + r), q) + gemm(c + r, h) + gemm(h, heads * d);
  for (const bool decode : {false, true}) {
    LayerShape shape = Shape(decode);
    shape.attention = {h, heads, heads, d, c, q, r};
    CostModel costs(profile, shape);
    const double context = decode ? 8192 : 4096.5;
    double projections = 0, core = 0;
    if (decode) {
      // Absorbed: per head d -> c into the latent and c -> d out of it; attention over the
      // cached latents: 2 t S heads (2c + r) FLOPs, reading (c + r) per cached token once,
      // Q of c + r and O of c per head.
      projections = common + gemm(c, d, heads) + gemm(d, c, heads);
      core = Roofline(2 * t * context * heads * (2 * c + r), 2 * (t * heads * (2 * c + r) + t * context * (c + r)));
    } else {
      // Keys and values up from the latent (c -> heads 2d); QK^T over d + r, PV over d.
      projections = common + gemm(heads * 2 * d, c);
      core = Roofline(2 * t * context * heads * (2 * d + r), 2 * t * heads * (2 * (d + r) + 2 * d));
    }
    EXPECT_NEAR(costs.AttentionS(512, false), projections + core, 1e-15) << decode;
    EXPECT_NEAR(costs.AttentionS(512, true), 2 * projections + 2.5 * core, 1e-15) << decode;
  }
  // Decode reads the latent cache at least: c + r = 576 bf16 values per cached token.
  LayerShape latent = Shape(true);
  latent.attention = {h, heads, heads, d, c, q, r};
  const double cache_s = t * 8192 * (c + r) * 2 / 2e12;
  EXPECT_GT(CostModel(profile, latent).AttentionS(512, false), cache_s);
}

// The projections are dense GEMMs (split K) in the attention's dtype: fp8 halves what each
// reads of its weights (plus one fp32 scale per 128 x 128 block), GroupedGemmWork's closed form.
TEST(CostModelTest, ProjectionsAreDenseGemmsInTheAttentionsDtype) {
  AttentionShape a{4096, 32, 32, 128, 512, 1536, 64};
  a.projection_dtype = GemmDtype::kFp8;
  const std::vector<GroupedGemm> gemms = AttentionProjections(64, a, true);
  ASSERT_EQ(gemms.size(), 6u);  // query down and up, latent down, two absorbed per head, output
  for (const GroupedGemm& g : gemms) {
    EXPECT_EQ(g.dtype, GemmDtype::kFp8);
    EXPECT_TRUE(g.split_k);
  }
  const GroupedGemm& down = gemms[0];
  EXPECT_EQ(down.n, 1536);
  EXPECT_EQ(down.k, 4096);
  EXPECT_DOUBLE_EQ(GroupedGemmWork(down).bytes, 1536.0 * 4096 + 4 * 12 * 32 + 64 * (4096 + 4 * 32 + 2 * 1536));
}

TEST(CostModelTest, ExpertsBackwardIsTwiceTheForwardOnARoofline) {
  const Profile profile = RoundProfile();
  CostModel costs(profile, Shape(false));
  const std::vector<int64_t> rows = {100, 0, 3000};
  EXPECT_DOUBLE_EQ(costs.ExpertsBackwardS(rows), 2 * costs.ExpertsS(rows));
  // One FFN per expert: 6 m h f FLOPs, the 3 h f bf16 weights and 2 m (2h + 3f) bytes.
  const double expected = Roofline(6.0 * 100 * 4096 * 1024, 2.0 * 3 * 4096 * 1024 + 2.0 * 100 * (2 * 4096 + 3 * 1024)) +
                          Roofline(6.0 * 3000 * 4096 * 1024, 2.0 * 3 * 4096 * 1024 + 2.0 * 3000 * (2 * 4096 + 3 * 1024));
  EXPECT_NEAR(costs.ExpertsS(rows), expected, 1e-15);
}

}  // namespace
}  // namespace epsim
