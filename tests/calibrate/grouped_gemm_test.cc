// epsim profile tests: the grouped_gemm form of the expert operation (calibrate/profile/
// profile.h) against closed forms: tile rounding, waves over the SMs, the K efficiency, the
// launch floor, the memory-bound regime of small M, fp8 against bf16; its work formulas
// (op_work.h); and the profile file form.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "calibrate/profile/op_work.h"
#include "calibrate/profile/profile.h"
#include "common/error.h"

namespace epsim {
namespace {

// A made-up GPU with round numbers: 100 SMs, 128 x 128 tiles, 1000 TFLOP/s bf16 and 2000 fp8
// at efficiency 0.5, K half-efficiency at 1024, 2 TB/s, 5 us per launch.
OpModel Model() {
  OpModel m;
  m.name = "expert";
  m.form = "grouped_gemm";
  m.fixed_s = 5e-6;
  m.mem_rate_Bps = 2e12;
  m.gemm.sms = 100;
  m.gemm.row_tile = 128;
  m.gemm.col_tile = 128;
  m.gemm.peak_bf16_Fps = 1000e12;
  m.gemm.peak_fp8_Fps = 2000e12;
  m.gemm.efficiency = 0.5;
  m.gemm.efficiency_fp8 = 0.5;
  m.gemm.k_half = 1024;
  return m;
}

// One tile of K on one SM: 2 x 128 x 128 x K FLOPs at peak / 100 x 0.5 x K / (K + 1024).
double TileS(double k, double peak) { return 2.0 * 128 * 128 * k / (peak / 100 * 0.5 * k / (k + 1024)); }

TEST(GroupedGemmTest, WorkCountsUsefulFlopsAndEachExpertsWeightsOnce) {
  const GroupedGemm bf16{{3, 0, 5}, 256, 512, GemmDtype::kBf16};
  const OpWork w = GroupedGemmWork(bf16);
  EXPECT_DOUBLE_EQ(w.flops, 2.0 * 8 * 256 * 512);
  // Two experts with rows: 2 x (weights 2NK) + 8 rows x (2K in + 2N out); the empty one reads nothing.
  EXPECT_DOUBLE_EQ(w.bytes, 2 * (2.0 * 256 * 512) + 8 * (2.0 * 512 + 2.0 * 256));
  EXPECT_DOUBLE_EQ(w.tokens, 8);
  // fp8: 1-byte weights plus an fp32 scale per 128 x 128 block, 1-byte inputs plus one per 128.
  const OpWork f = GroupedGemmWork({{3, 0, 5}, 256, 512, GemmDtype::kFp8});
  EXPECT_DOUBLE_EQ(f.bytes, 2 * (256.0 * 512 + 4 * 2 * 4) + 8 * (512 + 4 * 4 + 2.0 * 256));
  EXPECT_DOUBLE_EQ(GroupedGemmTiles(bf16, 128, 128), 2 * (1 * 2));
  // The layer: gate/up is N = 2F, K = H; down is N = H, K = F.
  const GroupedGemm up = GateUpGemm({1}, 7168, 2048, GemmDtype::kFp8), down = DownGemm({1}, 7168, 2048, GemmDtype::kFp8);
  EXPECT_EQ(up.n, 4096);
  EXPECT_EQ(up.k, 7168);
  EXPECT_EQ(down.n, 7168);
  EXPECT_EQ(down.k, 2048);
}

// Training's backward: the input gradients of down (N = F, K = H) and gate/up (N = H,
// K = 2F) over the forward's rows have the forward's 6 M H F FLOPs; with the weight
// gradients (the forward's FLOPs again) the backward is twice the forward.
TEST(GroupedGemmTest, InputGradientsHaveTheForwardsFlops) {
  const std::vector<int64_t> rows = {3, 0, 5};
  const double h = 7168, f = 2048;
  const GroupedGemm down = DownInputGradGemm(rows, h, f, GemmDtype::kBf16);
  const GroupedGemm up = GateUpInputGradGemm(rows, h, f, GemmDtype::kBf16);
  EXPECT_EQ(down.n, f);
  EXPECT_EQ(down.k, h);
  EXPECT_EQ(up.n, h);
  EXPECT_EQ(up.k, 2 * f);
  const double forward = GroupedGemmWork(GateUpGemm(rows, h, f, GemmDtype::kBf16)).flops +
                         GroupedGemmWork(DownGemm(rows, h, f, GemmDtype::kBf16)).flops;
  EXPECT_DOUBLE_EQ(forward, 6.0 * 8 * h * f);
  EXPECT_DOUBLE_EQ(GroupedGemmWork(down).flops + GroupedGemmWork(up).flops, 6.0 * 8 * h * f);
}

// A dense GEMM that splits K (the attention's projections): 128 rows x N 1536 is 12 tiles on
// 100 SMs, so K 7168 may be cut into up to floor(100 / 12) = 8 slices, one wave at the
// slices' K efficiency, the slices' fp32 partials (8 bytes per output element each) through
// HBM; the launch takes the fastest. Without a memory bound that is 8 slices of 896. With
// 120 tiles (N 15360) nothing splits; a grouped expert launch never does.
TEST(GroupedGemmTest, DenseGemmsSplitKOverIdleSms) {
  OpModel m = Model();
  const GroupedGemm dense{{128}, 1536, 7168, GemmDtype::kBf16, true};
  const double bytes = GroupedGemmWork(dense).bytes;
  double fastest = 1e30;
  for (int s = 1; s <= 8; ++s)
    fastest = std::min(fastest, 5e-6 + std::max(TileS(7168.0 / s, 1000e12), (bytes + (s > 1 ? 8.0 * s * 128 * 1536 : 0)) / 2e12));
  EXPECT_NEAR(m.GroupedGemmS(dense), fastest, 1e-15);
  EXPECT_LT(m.GroupedGemmS(dense), 5e-6 + TileS(7168, 1000e12));  // splitting pays here
  m.mem_rate_Bps = 1e30;
  const GroupedGemmParts parts = m.GroupedGemmBreakdown(dense);
  EXPECT_EQ(parts.splits, 8);
  EXPECT_EQ(parts.waves, 1);
  EXPECT_NEAR(parts.compute_s, TileS(896, 1000e12), 1e-15);
  GroupedGemm grouped = dense;
  grouped.split_k = false;
  EXPECT_EQ(m.GroupedGemmBreakdown(grouped).splits, 1);
  EXPECT_NEAR(m.GroupedGemmBreakdown(grouped).compute_s, TileS(7168, 1000e12), 1e-15);
  const GroupedGemm wide{{128}, 15360, 7168, GemmDtype::kBf16, true};
  EXPECT_EQ(m.GroupedGemmBreakdown(wide).splits, 1);
}

TEST(GroupedGemmTest, ComputeIsWholeTilesInWaves) {
  OpModel m = Model();
  m.mem_rate_Bps = 1e30;  // compute alone
  const double k = 1024;
  // 1 row and 128 rows fill the same tile.
  EXPECT_DOUBLE_EQ(m.GroupedGemmS({{1}, 128, k, GemmDtype::kBf16}), m.GroupedGemmS({{128}, 128, k, GemmDtype::kBf16}));
  // 100 tiles: one wave; 101: two.
  const std::vector<int64_t> hundred(100, 128), hundred_and_one(101, 128);
  EXPECT_NEAR(m.GroupedGemmS({hundred, 128, k, GemmDtype::kBf16}), 5e-6 + TileS(k, 1000e12), 1e-15);
  EXPECT_NEAR(m.GroupedGemmS({hundred_and_one, 128, k, GemmDtype::kBf16}), 5e-6 + 2 * TileS(k, 1000e12), 1e-15);
  // At K = k_half a tile runs at half the efficiency: twice its time at the long-K rate.
  EXPECT_NEAR(TileS(k, 1000e12), 2 * (2.0 * 128 * 128 * k / (1000e12 / 100 * 0.5)), 1e-18);
  // fp8 at twice the peak and the same efficiency: half the compute; at a lower fp8
  // efficiency, in proportion.
  EXPECT_NEAR(m.GroupedGemmS({hundred, 128, k, GemmDtype::kFp8}) - 5e-6,
              (m.GroupedGemmS({hundred, 128, k, GemmDtype::kBf16}) - 5e-6) / 2, 1e-15);
  m.gemm.efficiency_fp8 = 0.4;
  EXPECT_NEAR(m.GroupedGemmS({hundred, 128, k, GemmDtype::kFp8}) - 5e-6,
              (m.GroupedGemmS({hundred, 128, k, GemmDtype::kBf16}) - 5e-6) / 2 * 0.5 / 0.4, 1e-15);
}

TEST(GroupedGemmTest, SmallExpertsAreBoundByTheirWeightsAndTheFloor) {
  const OpModel m = Model();
  // 32 experts of one row, N 4096, K 7168, bf16: compute is one wave of 32 tiles x 32
  // columns = 1024 tiles (11 waves) of 2 x 128 x 128 x 7168; the weights are 32 x 2NK bytes.
  const GroupedGemm g{std::vector<int64_t>(32, 1), 4096, 7168, GemmDtype::kBf16};
  const double bytes = GroupedGemmWork(g).bytes;
  const double compute = std::ceil(32.0 * 32 / 100) * TileS(7168, 1000e12);
  ASSERT_GT(bytes / 2e12, compute);
  EXPECT_NEAR(m.GroupedGemmS(g), 5e-6 + bytes / 2e12, 1e-15);
  // No expert with rows: no launch, no floor.
  EXPECT_EQ(m.GroupedGemmS({{0, 0}, 4096, 7168, GemmDtype::kBf16}), 0.0);
}

const char kProfile[] = R"(schema_version: 3
name: gemm-test
source: datasheet
device: {name: Test GPU, memory: 80GB}
operations:
  route: {form: roofline, flop_rate_TFLOPs: 500, mem_rate_GBps: 2000}
  permute: {form: roofline, mem_rate_GBps: 2000}
  expert:
    form: grouped_gemm
    fixed_us: 5
    sms: 100
    row_tile: 128
    col_tile: 128
    peak_bf16_TFLOPs: 1000
    peak_fp8_TFLOPs: 2000
    efficiency: 0.5
    k_half: 1024
    mem_rate_GBps: 2000
  combine: {form: roofline, mem_rate_GBps: 2000}
)";

TEST(GroupedGemmTest, ProfileFormRoundTripsAndIsChecked) {
  const Profile p = ParseProfile(kProfile, "gemm.yaml");
  const OpModel& e = p.Op("expert");
  ASSERT_TRUE(e.IsGroupedGemm());
  const GroupedGemm g{{7, 300}, 4096, 7168, GemmDtype::kFp8};
  EXPECT_DOUBLE_EQ(e.GroupedGemmS(g), Model().GroupedGemmS(g));
  const Profile again = ParseProfile(FormatProfile(p, ""), "again.yaml");
  EXPECT_DOUBLE_EQ(again.Op("expert").GroupedGemmS(g), e.GroupedGemmS(g));
  auto refused = [&](const std::string& from, const std::string& to, const std::string& key) {
    std::string text = kProfile;
    text.replace(text.find(from), from.size(), to);
    try {
      ParseProfile(text, "bad.yaml");
      ADD_FAILURE() << to << ": accepted";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.key(), key) << e.what();
    }
  };
  refused("efficiency: 0.5", "efficiency: 1.5", "operations.expert.efficiency");
  refused("    peak_fp8_TFLOPs: 2000\n", "    efficiency_fp8: 0.4\n", "operations.expert.efficiency_fp8");
  refused("    peak_bf16_TFLOPs: 1000\n", "", "operations.expert.peak_bf16_TFLOPs");
  refused("sms: 100", "sms: 0", "operations.expert.sms");
  refused("row_tile: 128", "row_tile: 1e6", "operations.expert.row_tile");
  refused("route: {form: roofline", "route: {form: grouped_gemm", "operations.route.form");
}

}  // namespace
}  // namespace epsim
