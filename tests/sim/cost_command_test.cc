// epsim tests: `epsim cost` against hand-worked numbers from the bundled profiles' figures,
// the same times the simulator's cost model gives, the CSV mode and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "calibrate/profile/profile.h"
#include "sim/engine/cost_model.h"
#include "sim/report/cost_report.h"
#include "tests/testing/csv_column.h"
#include "tests/testing/run_command.h"

namespace epsim {
namespace {

using testing::CommandResult;
using testing::CsvColumn;
using testing::CountLines;
using testing::RunCommand;
using testing::TestTmpDir;
using testing::WriteFile;

// The number after `label` in `text` ("predicted 1458.60 us" -> 1458.60), or NaN.
double After(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  return at == std::string::npos ? NAN : std::stod(text.substr(at + label.size()));
}

TEST(CostCommandTest, GroupedGemmByHand) {
  // calibrate/profiles/h800.yaml: 132 SMs, 128 x 128 tiles, fp8 peak 1978.9 TFLOP/s at
  // efficiency 0.715, k_half 390, a 3 us floor. 4 groups x 8192 rows, N 4096, K 7168:
  // 4 x 64 x 32 = 8192 tiles, 63 waves; a tile is 2 x 128 x 128 x 7168 FLOPs on one SM at
  // 1978.9e12 / 132 x 0.715 x 7168 / 7558.
  const double tile_s = 2.0 * 128 * 128 * 7168 / (1978.9e12 / 132 * 0.715 * 7168 / (7168 + 390));
  const double expected_us = (3e-6 + 63 * tile_s) * 1e6;
  const CommandResult r =
      RunCommand("sim/epsim cost --profile h800 --groups 4 --m 8192 --n 4096 --k 7168 --dtype fp8");
  ASSERT_TRUE(r.exited && r.exit_status == 0) << r.Describe();
  EXPECT_NEAR(After(r.out, "predicted "), expected_us, 0.01) << r.out;
  EXPECT_NE(r.out.find("compute-bound"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("8192 tiles of 128 x 128 in 63 waves of 132 SMs"), std::string::npos) << r.out;
  const double tflops = 2.0 * 4 * 8192 * 4096 * 7168 / (expected_us * 1e-6) / 1e12;
  EXPECT_NEAR(After(r.out, "; "), tflops, 0.1) << r.out;
  EXPECT_NEAR(After(r.out, "TFLOP/s, "), 100 * tflops / 1978.9, 0.1) << r.out;
}

TEST(CostCommandTest, FloorAndMemoryBoundsByHand) {
  // route at 16 tokens on h100: 11.6 us floor + max(2 T H E / 788 TFLOP/s, bytes / 3001 GB/s),
  // bytes 2 (T H + H E) + 4 T E: the floor dominates.
  const double bytes = 2.0 * (16 * 7168 + 7168 * 256) + 4.0 * 16 * 256;
  const CommandResult r = RunCommand("sim/epsim cost --profile h100 --op route --tokens 16 --hidden 7168 --experts 256");
  ASSERT_TRUE(r.exited && r.exit_status == 0) << r.Describe();
  EXPECT_NEAR(After(r.out, "predicted "), 11.6 + bytes / 3001e9 * 1e6, 0.01) << r.out;
  EXPECT_NE(r.out.find("floor-bound"), std::string::npos) << r.out;
  // One row per expert, 32 experts, fp8: memory-bound on the weights, 32 x (N K + scales)
  // bytes and the rows' in and out, at 3001 GB/s, + 3 us.
  const CommandResult m = RunCommand("sim/epsim cost --profile h100 --groups 32 --m 1 --n 4096 --k 7168 --dtype fp8");
  ASSERT_TRUE(m.exited && m.exit_status == 0) << m.Describe();
  const double weights = 4096.0 * 7168 + 4 * 32 * 56, per_row = 7168 + 4 * 56 + 2 * 4096;
  EXPECT_NEAR(After(m.out, "predicted "), 3 + 32 * (weights + per_row) / 3001e9 * 1e6, 0.01) << m.out;
  EXPECT_NE(m.out.find("memory-bound"), std::string::npos) << m.out;
}

// --op dense: one row, N 2112, K 7168, bf16 on h100 is 17 tiles, so K may split in up to 7;
// the split it takes (printed) is memory-bound: 3 us + (weights, the row in and out, and
// 8 bytes per output element per slice) / 3001 GB/s, below the grouped launch's 17 SMs.
TEST(CostCommandTest, DenseGemmSplitsKByHand) {
  const CommandResult dense = RunCommand("sim/epsim cost --profile h100 --op dense --m 1 --n 2112 --k 7168");
  ASSERT_TRUE(dense.exited && dense.exit_status == 0) << dense.Describe();
  const double splits = After(dense.out, "K split in ");
  ASSERT_GE(splits, 2) << dense.out;
  ASSERT_LE(splits, 7) << dense.out;
  const double bytes = 2.0 * 2112 * 7168 + 2.0 * 7168 + 2.0 * 2112 + 8.0 * splits * 2112;
  EXPECT_NEAR(After(dense.out, "predicted "), 3 + bytes / 3001e9 * 1e6, 0.01) << dense.out;
  EXPECT_NE(dense.out.find("memory-bound"), std::string::npos) << dense.out;
  const CommandResult grouped = RunCommand("sim/epsim cost --profile h100 --m 1 --n 2112 --k 7168");
  ASSERT_TRUE(grouped.exited && grouped.exit_status == 0) << grouped.Describe();
  EXPECT_GT(After(grouped.out, "predicted "), 3 * After(dense.out, "predicted ")) << grouped.out;
}

TEST(CostCommandTest, ExpertLayerIsWhatTheSimulatorUses) {
  const Profile h100 = LoadProfile("calibrate/profiles/h100.yaml");
  LayerShape shape;
  shape.hidden = 7168;
  shape.expert_ffn = 2048;
  shape.num_experts = 256;
  shape.top_k = 8;
  shape.expert_dtype = GemmDtype::kFp8;
  CostModel costs(h100, shape);
  CostCase c;
  c.op = "expert";
  c.rows = {3, 0, 50, 400, 4096};
  c.dtype = GemmDtype::kFp8;
  c.shape = shape;
  EXPECT_DOUBLE_EQ(PredictCost(h100, c).time_s, costs.ExpertsS(c.rows));
}

// Shared experts run on every GPU over all of its own tokens, in launches of their own: a
// run with one shared expert takes, on every GPU, exactly one such layer longer in its expert
// phase than the same run without (the routed experts' rows are the same: same seed).
TEST(CostCommandTest, SharedExpertsAreCostedOnEveryGpu) {
  const std::string args = "sim/epsim --gpus 16 --nodes 2 --tokens-per-gpu 64 --experts 32 --top-k 4 --hidden 1024 "
                           "--expert-ffn 512 --steps 2 --routing zipf:1 --engine analytic --expert-dtype fp8";
  const std::string with = TestTmpDir() + "/shared1", without = TestTmpDir() + "/shared0";
  ASSERT_EQ(RunCommand(args + " --shared-experts 1 --out " + with).exit_status, 0);
  ASSERT_EQ(RunCommand(args + " --shared-experts 0 --out " + without).exit_status, 0);
  const Profile h100 = LoadProfile("calibrate/profiles/h100.yaml");
  LayerShape shape;
  shape.hidden = 1024;
  shape.expert_ffn = 512;
  shape.expert_dtype = GemmDtype::kFp8;
  CostModel costs(h100, shape);
  const double shared_s = costs.ExpertsS({64});  // 64 tokens on each GPU
  ASSERT_GT(shared_s, 0);
  const std::vector<double> a = CsvColumn(with + "/gpus.csv", "expert_s"), b = CsvColumn(without + "/gpus.csv", "expert_s");
  ASSERT_EQ(a.size(), 32u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i] - b[i], shared_s, 1e-12) << "row " << i;
}

TEST(CostCommandTest, CsvAddsThePredictions) {
  const std::string cases = TestTmpDir() + "/cases.csv";
  WriteFile(cases, "op,groups,m,n,k,dtype\ngemm,4,8192,4096,7168,fp8\nexpert,8,64,,,bf16\n");
  const CommandResult r = RunCommand("sim/epsim cost --profile h800 --csv " + cases + " --hidden 7168 --expert-ffn 2048");
  ASSERT_TRUE(r.exited && r.exit_status == 0) << r.Describe();
  ASSERT_EQ(CountLines(r.out), 3) << r.out;
  EXPECT_EQ(r.out.rfind("op,groups,m,n,k,dtype,predicted_us,bound,tflops,efficiency\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("gemm,4,8192,4096,7168,fp8,1458.6,compute,"), std::string::npos) << r.out;
  const CommandResult one = RunCommand("sim/epsim cost --profile h800 --op expert --groups 8 --m 64 --hidden 7168 "
                                       "--expert-ffn 2048");
  EXPECT_NEAR(After(r.out, "expert,8,64,,,bf16,"), After(one.out, "predicted "), 0.01) << r.out << one.out;
}

void ExpectOneLineError(const std::string& args, const std::string& expected) {
  const CommandResult r = RunCommand("sim/epsim cost " + args);
  EXPECT_TRUE(r.exited && r.exit_status == 2) << args << "\n" << r.Describe();
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(CostCommandTest, BadInputIsOneLine) {
  ExpectOneLineError("--m 1 --n 1 --k 1", "--profile: missing");
  ExpectOneLineError("--profile h100 --op softmax --m 1 --n 1 --k 1", "--op: 'softmax': unknown operation");
  ExpectOneLineError("--profile h100 --m 1,2,3 --groups 2 --n 8 --k 8", "--groups: '2': differs from the 3 rows");
  ExpectOneLineError("--profile h100 --m -4 --n 8 --k 8", "--m: '-4'");
  ExpectOneLineError("--profile h100 --m 4 --n 0 --k 8", "--n: '0'");
  ExpectOneLineError("--profile a100 --m 4 --n 8 --k 8 --dtype fp8", "--dtype: 'fp8': profile a100 has no fp8 peak");
  ExpectOneLineError("--profile cpu-dev --m 4 --n 8 --k 8 --dtype fp8", "--dtype: 'fp8': profile cpu-dev's expert model");
  ExpectOneLineError("--profile h100 --m 4 --n 8 --k 8 --dtype fp4", "--dtype: 'fp4': expected bf16 or fp8");
  ExpectOneLineError("--profile h100 --op route --hidden 7168 --experts 8", "--tokens: missing");
  const std::string bad = TestTmpDir() + "/bad.csv";
  WriteFile(bad, "op,m,n,k\ngemm,64,512,x\n");
  ExpectOneLineError("--profile h100 --csv " + bad, "bad.csv: line 2: k: 'x': expected a number");
  WriteFile(bad, "op,m,n,width\ngemm,64,512,3\n");
  ExpectOneLineError("--profile h100 --csv " + bad, "bad.csv: line 1: 'width': unknown column");
  WriteFile(bad, "op,m,n,k,dtype\ngemm,64,512,64,fp8\n");
  ExpectOneLineError("--profile a100 --csv " + bad, "bad.csv: line 2: dtype: 'fp8': profile a100 has no fp8 peak");
}

}  // namespace
}  // namespace epsim
