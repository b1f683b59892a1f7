// epsim tests: a stack of MoE layers (model.layers), end to end: identical layers against
// one layer, each layer's own routing, tokens per second.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing/csv_column.h"
#include "tests/testing/run_command.h"

namespace {

using epsim::testing::CsvColumn;
using epsim::testing::ReadFile;

constexpr int kGpus = 16, kTokens = 64, kExperts = 32, kTopK = 4;
const std::string kSmall = "--gpus 16 --nodes 2 --tokens-per-gpu 64 --experts 32 --top-k 4 --hidden 1024 "
                           "--expert-ffn 512 --steps 2";

std::string RunStack(const std::string& name, const std::string& args) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  const epsim::testing::CommandResult r = epsim::testing::RunCommand("sim/epsim " + kSmall + " " + args + " --out " + dir);
  EXPECT_EQ(r.exit_status, 0) << r.err;
  return dir;
}

// Expert j of token t of GPU g in step s of a per-token trace with `stride`: expert 0 for
// every third token's first pick (a skew towards it), else (g + t + s + stride j + 1)
// mod 31 + 1, distinct for j < 4 when stride is 7 or 5.
int TraceExpert(int g, int t, int s, int j, int stride) {
  return t % 3 == 0 && j == 0 ? 0 : (g + t + s + stride * j + 1) % (kExperts - 1) + 1;
}

// A per-token routing trace file of TraceExpert's choices.
std::string TokenTrace(const std::string& name = "stack_trace", int stride = 7) {
  const std::string path = ::testing::TempDir() + "/" + name + ".csv";
  std::string csv = "step,gpu,token,experts\n";
  for (int s = 0; s < 2; ++s) {
    for (int g = 0; g < kGpus; ++g) {
      for (int t = 0; t < kTokens; ++t) {
        std::string experts;
        for (int j = 0; j < kTopK; ++j) experts += (j ? " " : "") + std::to_string(TraceExpert(g, t, s, j, stride));
        csv += std::to_string(s) + "," + std::to_string(g) + "," + std::to_string(t) + ",\"" + experts + "\"\n";
      }
    }
  }
  epsim::testing::WriteFile(path, csv);
  return path;
}

// Layers with the same routing cost the layers times one layer: the units run one after
// the other and each starts from idle GPUs, on both engines, forward and training alike.
TEST(StackTest, IdenticalLayersCostLayersTimesOneLayer) {
  const std::string trace = TokenTrace();
  for (const std::string& extra : {std::string("--engine analytic"), std::string("--engine simgrid --mode training")}) {
    const std::string one = RunStack("one", "--routing trace:" + trace + " " + extra);
    const std::string three = RunStack("three", "--routing trace:" + trace + " --layers 3 " + extra);
    for (const char* column : {"step_time_s", "forward_s", "backward_s", "dispatch_s", "expert_s", "stall_max_s",
                               "assignments"}) {
      const std::vector<double> a = CsvColumn(one + "/steps.csv", column), b = CsvColumn(three + "/steps.csv", column);
      ASSERT_EQ(a.size(), 2u);
      ASSERT_EQ(b.size(), 2u);
      for (size_t s = 0; s < a.size(); ++s) EXPECT_NEAR(b[s], 3 * a[s], 1e-8 * a[s]) << column << " " << extra;
    }
    for (const char* column : {"token_skew", "expert_skew"}) {  // means over the layers
      const std::vector<double> a = CsvColumn(one + "/steps.csv", column), b = CsvColumn(three + "/steps.csv", column);
      for (size_t s = 0; s < a.size(); ++s) EXPECT_NEAR(b[s], a[s], 1e-8 * a[s]) << column;
    }
    const int passes = extra.find("training") != std::string::npos ? 2 : 1;
    EXPECT_EQ(CsvColumn(three + "/gpus.csv", "layer").size(), 2u * 3 * passes * kGpus);
    EXPECT_EQ(CsvColumn(three + "/experts.csv", "layer").size(), 2u * 3 * kExperts);
  }
}

// Layer 0 of a stack draws what a single layer draws; the next layers draw their own
// experts (which are hot differs), over the same tokens per GPU.
TEST(StackTest, EachLayerDrawsItsOwnRouting) {
  const std::string one = RunStack("own_1", "--routing zipf:1 --engine analytic --token-spread lognormal:0.3");
  const std::string two = RunStack("own_2", "--routing zipf:1 --engine analytic --token-spread lognormal:0.3 --layers 2");
  const std::vector<double> single = CsvColumn(one + "/experts.csv", "kept_tokens");
  const std::vector<double> stacked = CsvColumn(two + "/experts.csv", "kept_tokens");
  const std::vector<double> layer = CsvColumn(two + "/experts.csv", "layer");
  std::vector<double> layer0, layer1;
  for (size_t i = 0; i < stacked.size(); ++i) (layer[i] == 0 ? layer0 : layer1).push_back(stacked[i]);
  EXPECT_EQ(layer0, single);
  EXPECT_NE(layer1, layer0);
  // Every layer routes the step's tokens: each GPU's (log-normal) count, top-k each.
  const std::vector<double> a1 = CsvColumn(one + "/steps.csv", "assignments");
  const std::vector<double> a2 = CsvColumn(two + "/steps.csv", "assignments");
  for (size_t st = 0; st < a1.size(); ++st) EXPECT_EQ(a2[st], 2 * a1[st]) << st;
}

// workload.layer_routing gives each layer its own trace: each layer's expert counts are its
// trace's (counted here from the choices), and since every layer starts from idle GPUs the
// stack costs exactly the two traces' single-layer runs added.
TEST(StackTest, EachLayerReplaysItsOwnTrace) {
  const std::string a = TokenTrace("layer_trace_a", 7), b = TokenTrace("layer_trace_b", 5);
  const std::string stack = RunStack("layer_traces", "--engine analytic --capacity-factor none --layers 2 --layer-routing \"trace:" + a +
                                                         ";trace:" + b + "\"");
  const std::vector<double> step = CsvColumn(stack + "/experts.csv", "step"),
                            expert = CsvColumn(stack + "/experts.csv", "expert"),
                            layer = CsvColumn(stack + "/experts.csv", "layer"),
                            kept = CsvColumn(stack + "/experts.csv", "kept_tokens");
  ASSERT_EQ(kept.size(), 2u * 2 * kExperts);
  for (size_t i = 0; i < kept.size(); ++i) {
    const int s = static_cast<int>(step[i]), e = static_cast<int>(expert[i]);
    const int stride = layer[i] == 0 ? 7 : 5;
    int expected = 0;
    for (int g = 0; g < kGpus; ++g)
      for (int t = 0; t < kTokens; ++t)
        for (int j = 0; j < kTopK; ++j) expected += TraceExpert(g, t, s, j, stride) == e;
    EXPECT_EQ(kept[i], expected) << "step " << s << " layer " << layer[i] << " expert " << e;
  }
  const std::string single = "--engine analytic --capacity-factor none --routing trace:";
  const std::vector<double> one_a = CsvColumn(RunStack("layer_trace_1a", single + a) + "/steps.csv", "step_time_s");
  const std::vector<double> one_b = CsvColumn(RunStack("layer_trace_1b", single + b) + "/steps.csv", "step_time_s");
  const std::vector<double> both = CsvColumn(stack + "/steps.csv", "step_time_s");
  ASSERT_EQ(both.size(), 2u);
  for (size_t s = 0; s < both.size(); ++s) EXPECT_NEAR(both[s], one_a[s] + one_b[s], 1e-9 * both[s] + 2e-12) << s;  // steps.csv's digits
  EXPECT_NE(one_a[0], one_b[0]);  // the traces differ in cost, so the sum tells them apart
}

// A counts trace with a layer column gives each layer its own counts: layer 0's name only
// experts 0-3 and layer 1's only 4-7, so with top-4 every token of a layer takes exactly
// those four; stack layer 2 takes the file's layer 0 again (2 mod 2).
TEST(StackTest, ATracesLayerColumnGivesEachLayerItsCounts) {
  const std::string path = ::testing::TempDir() + "/layered_counts.csv";
  std::string csv = "step,layer,expert,tokens\n";
  for (int layer = 0; layer < 2; ++layer)
    for (int e = 0; e < 4; ++e) csv += "0," + std::to_string(layer) + "," + std::to_string(4 * layer + e) + ",10\n";
  epsim::testing::WriteFile(path, csv);
  const std::string dir = RunStack("layered_counts", "--engine analytic --capacity-factor none --layers 3 --routing trace:" + path);
  const std::vector<double> expert = CsvColumn(dir + "/experts.csv", "expert"), layer = CsvColumn(dir + "/experts.csv", "layer"),
                            kept = CsvColumn(dir + "/experts.csv", "kept_tokens");
  ASSERT_EQ(kept.size(), 2u * 3 * kExperts);
  for (size_t i = 0; i < kept.size(); ++i) {
    const int first = layer[i] == 1 ? 4 : 0;
    const bool chosen = expert[i] >= first && expert[i] < first + 4;
    EXPECT_EQ(kept[i], chosen ? kGpus * kTokens : 0) << "layer " << layer[i] << " expert " << expert[i];
  }
  EXPECT_NE(ReadFile(dir + "/summary.json").find("\"workload.layer_routing\": \"same\""), std::string::npos);
}

// Distributions per layer: with hot:0.25 and top-4, every token of layer 1 takes the hot
// expert (probability SHARE k = 1), so it holds exactly a quarter of the layer's
// assignments, while layer 0, uniform, has no such expert.
TEST(StackTest, EachLayerDrawsFromItsOwnDistribution) {
  const std::string dir = RunStack("layer_dists", "--engine analytic --capacity-factor none --layers 2 --layer-routing \"uniform; hot:0.25\"");
  const std::vector<double> step = CsvColumn(dir + "/experts.csv", "step"), layer = CsvColumn(dir + "/experts.csv", "layer"),
                            kept = CsvColumn(dir + "/experts.csv", "kept_tokens");
  for (int s = 0; s < 2; ++s) {
    for (int l = 0; l < 2; ++l) {
      double most = 0, total = 0;
      for (size_t i = 0; i < kept.size(); ++i) {
        if (step[i] != s || layer[i] != l) continue;
        most = std::max(most, kept[i]);
        total += kept[i];
      }
      EXPECT_EQ(total, kGpus * kTokens * kTopK);
      if (l == 1) {
        EXPECT_EQ(most, kGpus * kTokens) << s;
      } else {
        EXPECT_LT(most, 0.1 * total) << s;
      }
    }
  }
  EXPECT_NE(ReadFile(dir + "/summary.json").find("\"workload.layer_routing\": \"uniform; hot:0.25\""),
            std::string::npos);
}

// Tokens per second per GPU: each GPU's tokens over the step time, whatever the layers.
TEST(StackTest, ThroughputIsTokensOverStepTime) {
  for (const char* layers : {"1", "4"}) {
    const std::string dir = RunStack(std::string("tps_") + layers, std::string("--engine analytic --layers ") + layers);
    const std::vector<double> step = CsvColumn(dir + "/steps.csv", "step_time_s");
    const double expected = 2.0 * kTokens / (step[0] + step[1]);
    const std::string summary = ReadFile(dir + "/summary.json");
    const size_t at = summary.find("\"tokens_per_s_per_gpu\": ");
    ASSERT_NE(at, std::string::npos) << summary;
    EXPECT_NEAR(std::stod(summary.substr(at + 24)), expected, 1e-6 * expected) << layers;
  }
}

// The report names where stalls accumulate: the GPU with the most stall per step (from
// gpus.csv, summed over its layers) and the layer where it stalls most.
TEST(StackTest, ReportNamesTheMostStalledGpuAndItsWorstLayer) {
  const std::string dir = ::testing::TempDir() + "/stalls";
  const epsim::testing::CommandResult r = epsim::testing::RunCommand(
      "sim/epsim " + kSmall + " --routing zipf:1.2 --engine analytic --layers 3 --out " + dir);
  ASSERT_EQ(r.exit_status, 0) << r.err;
  const std::vector<double> gpu = CsvColumn(dir + "/gpus.csv", "gpu"), layer = CsvColumn(dir + "/gpus.csv", "layer"),
                            stall = CsvColumn(dir + "/gpus.csv", "stall_s");
  std::vector<double> per_gpu(kGpus, 0), per_layer(3, 0);
  for (size_t i = 0; i < gpu.size(); ++i) per_gpu[static_cast<size_t>(gpu[i])] += stall[i] / 2;
  const int worst = static_cast<int>(std::max_element(per_gpu.begin(), per_gpu.end()) - per_gpu.begin());
  for (size_t i = 0; i < gpu.size(); ++i)
    if (gpu[i] == worst) per_layer[static_cast<size_t>(layer[i])] += stall[i] / 2;
  const int worst_layer = static_cast<int>(std::max_element(per_layer.begin(), per_layer.end()) - per_layer.begin());
  char expected[200];
  std::snprintf(expected, sizeof(expected), "# stalls over the stack: GPU %d stalls most, %.3f ms per step, %.3f ms of it in layer %d",
                worst, per_gpu[worst] * 1e3, per_layer[worst_layer] * 1e3, worst_layer);
  EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.out;
  EXPECT_GT(per_gpu[worst], 0);
}

// Decode: a step is one token of each sequence through the stack, so its time is the time
// per output token; attention there reads each sequence's KV cache, and with more cache the
// step is longer (the attention sits in the route slot, before the router).
TEST(StackTest, DecodeStepIsTheTimePerOutputToken) {
  const std::string attention = " --heads 32 --kv-heads 8 --head-dim 64 --a2a low-latency --engine analytic --mode decode";
  const std::string short_cache = RunStack("decode_4k", "--sequence-length 4096" + attention);
  const std::string long_cache = RunStack("decode_32k", "--sequence-length 32768" + attention);
  const std::vector<double> step = CsvColumn(short_cache + "/steps.csv", "step_time_s");
  const std::string summary = ReadFile(short_cache + "/summary.json");
  const size_t at = summary.find("\"time_per_output_token_s\": ");
  ASSERT_NE(at, std::string::npos) << summary;
  EXPECT_NEAR(std::stod(summary.substr(at + 27)), (step[0] + step[1]) / 2, 1e-9 * step[0]);
  const std::vector<double> route_short = CsvColumn(short_cache + "/steps.csv", "route_s");
  const std::vector<double> route_long = CsvColumn(long_cache + "/steps.csv", "route_s");
  EXPECT_GT(route_long[0], route_short[0]);
}

// A blocking rebalance adds its weight moves before its step and changes nothing else: the
// step takes its time under free rebalances plus the moves'. Rebalances come every interval
// after step 0 (the plan in force when the run starts is free), and move whole experts:
// 3 H F bf16 weights (fp8: one byte each plus a 4-byte scale per 128 x 128 block).
TEST(StackTest, BlockingRebalancesAddTheirMovesBeforeTheirStep) {
  for (const std::string dtype : {"bf16", "fp8"}) {
    const std::string common = "--routing zipf:1 --drift-steps 2 --placement eplb --redundant-experts 16 "
                               "--rebalance-interval 2 --steps 6 --layers 2 --engine analytic --expert-dtype " + dtype +
                               (dtype == "fp8" ? " --profile h100" : "");
    const std::string free = RunStack("free_" + dtype, common);
    const std::string blocking = RunStack("blocking_" + dtype, common + " --rebalance-cost blocking");
    const std::vector<double> t_free = CsvColumn(free + "/steps.csv", "step_time_s");
    const std::vector<double> t_blocking = CsvColumn(blocking + "/steps.csv", "step_time_s");
    const std::vector<double> moved_s = CsvColumn(blocking + "/steps.csv", "rebalance_s");
    const std::vector<double> moved = CsvColumn(blocking + "/steps.csv", "rebalance_bytes");
    ASSERT_EQ(t_blocking.size(), 6u);
    // H 1024, F 512: gate/up 1024 x 1024 and down 1024 x 512 weights.
    const double expert = dtype == "bf16" ? 2.0 * 3 * 1024 * 512 : 3.0 * 1024 * 512 + 4 * (8 * 8 + 8 * 4);
    for (size_t s = 0; s < t_blocking.size(); ++s) {
      EXPECT_NEAR(t_blocking[s], t_free[s] + moved_s[s], 1e-8 * t_blocking[s]) << dtype << " step " << s;
      EXPECT_EQ(moved[s] > 0, s == 2 || s == 4) << dtype << " step " << s;
      EXPECT_EQ(moved_s[s] > 0, moved[s] > 0) << s;
      const double copies = moved[s] / expert;
      EXPECT_EQ(copies, std::round(copies)) << dtype << " step " << s << ": " << moved[s];
    }
    const std::vector<std::string> pass = epsim::testing::CsvTextColumn(blocking + "/gpus.csv", "pass");
    EXPECT_EQ(std::count(pass.begin(), pass.end(), "rebalance"), 2 * kGpus);
  }
}

// An overlapped rebalance moves the same weights as a blocking one (the same plans, from the
// same loads) beside its step instead of before it, each layer's during its forward, and the
// new placement takes effect at the next step: every other step is the free run's step, the
// step after a rebalance included (both route on the new plan there). Both engines agree.
TEST(StackTest, OverlappedRebalancesMoveBesideTheirStepAndApplyAStepLater) {
  const std::string common = "--routing zipf:1 --drift-steps 2 --placement eplb --redundant-experts 16 "
                             "--rebalance-interval 2 --steps 6 --layers 2 ";
  const std::string free = RunStack("over_free", common + "--engine analytic");
  const std::string blocking = RunStack("over_blocking", common + "--engine analytic --rebalance-cost blocking");
  const std::string overlapped = RunStack("over_analytic", common + "--engine analytic --rebalance-cost overlapped");
  const std::string simgrid = RunStack("over_simgrid", common + "--engine simgrid --rebalance-cost overlapped");
  const std::vector<double> t_free = CsvColumn(free + "/steps.csv", "step_time_s");
  const std::vector<double> t_over = CsvColumn(overlapped + "/steps.csv", "step_time_s");
  const std::vector<double> t_simgrid = CsvColumn(simgrid + "/steps.csv", "step_time_s");
  const std::vector<double> bytes_blocking = CsvColumn(blocking + "/steps.csv", "rebalance_bytes");
  const std::vector<double> bytes_over = CsvColumn(overlapped + "/steps.csv", "rebalance_bytes");
  const std::vector<double> moved_s = CsvColumn(overlapped + "/steps.csv", "rebalance_s");
  ASSERT_EQ(t_over.size(), 6u);
  for (size_t s = 0; s < t_over.size(); ++s) {
    const bool rebalance = s == 2 || s == 4;
    EXPECT_EQ(bytes_over[s], bytes_blocking[s]) << s;
    EXPECT_EQ(bytes_over[s] > 0, rebalance) << s;
    EXPECT_EQ(moved_s[s] > 0, rebalance) << s;
    if (!rebalance) {
      EXPECT_NEAR(t_over[s], t_free[s], 1e-9 * t_free[s]) << s;
    }
    EXPECT_NEAR(t_simgrid[s], t_over[s], 1e-3 * t_over[s]) << s;
  }
  const std::vector<std::string> pass = epsim::testing::CsvTextColumn(overlapped + "/gpus.csv", "pass");
  EXPECT_EQ(std::count(pass.begin(), pass.end(), "rebalance"), 0);  // no unit of its own
}

// Dense layers come first in the stack, move nothing and compute an FFN of dense_ffn over
// every token of the GPU: on a made-up roofline profile (no floors, 100 TFLOP/s, 1 TB/s) one
// expert of T rows costs max(6 T H F / 1e14, (2 x 3 H F + 2 T (2 H + 3 F)) / 1e12), twice
// that in the backward.
TEST(StackTest, DenseLayersComputeTheirFfnAndMoveNothing) {
  std::string profile = "schema_version: 2\nname: round\nsource: datasheet\ndevice:\n  name: Round GPU\n  memory: 80GB\n"
                        "operations:\n";
  for (const char* op : {"route", "permute", "expert", "combine"})
    profile += std::string("  ") + op + ":\n    form: roofline\n    fixed_us: 0\n    flop_rate_TFLOPs: 100\n"
               "    mem_rate_GBps: 1000\n";
  const std::string path = ::testing::TempDir() + "/round_profile.yaml";
  epsim::testing::WriteFile(path, profile);
  const std::string dir = RunStack("dense", "--profile " + path + " --dense-layers 2 --dense-ffn 4096 --layers 1 "
                                                                 "--mode training --engine analytic --routing zipf:1");
  const std::string gpus = dir + "/gpus.csv";
  const std::vector<double> layer = CsvColumn(gpus, "layer"), expert = CsvColumn(gpus, "expert_s"),
                            sent = CsvColumn(gpus, "dispatch_sent_bytes"), tokens = CsvColumn(gpus, "expert_tokens");
  const std::vector<std::string> pass = epsim::testing::CsvTextColumn(gpus, "pass");
  const double h = 1024, f = 4096, t = kTokens;
  const double ffn = std::max(6 * t * h * f / 1e14, (2 * 3 * h * f + 2 * t * (2 * h + 3 * f)) / 1e12);
  int dense_rows = 0;
  for (size_t i = 0; i < layer.size(); ++i) {
    if (layer[i] >= 2) continue;  // the MoE layer
    ++dense_rows;
    EXPECT_NEAR(expert[i], (pass[i] == "backward" ? 2 : 1) * ffn, 1e-8 * ffn) << i;
    EXPECT_EQ(sent[i], 0) << i;
    EXPECT_EQ(tokens[i], 0) << i;  // no token routed
  }
  EXPECT_EQ(dense_rows, 2 * 2 * 2 * kGpus);  // steps x dense layers x passes x GPUs
  // experts.csv: the MoE layer's experts only, as stack layer 2.
  const std::vector<double> expert_layer = CsvColumn(dir + "/experts.csv", "layer");
  EXPECT_EQ(expert_layer, std::vector<double>(2 * kExperts, 2));
}

// Dense layers change no routing: each step's MoE layer records the experts and drops of a
// SimGrid replay without them (which builds each unit only once the last is recorded), also
// where no unit has flows (one GPU), whose steps the fast path's engine choice must not
// build ahead of recording them.
TEST(StackTest, DenseLayersLeaveEachStepsRoutingAlone) {
  for (const std::string& gpus : {std::string(" --gpus 1 --nodes 1"), std::string()}) {
    const std::string args = kSmall + gpus + " --routing zipf:1 --capacity-factor 1 --steps 3";
    const std::string reference = ::testing::TempDir() + "/reference";
    ASSERT_EQ(epsim::testing::RunCommand("sim/epsim " + args + " --engine simgrid --out " + reference).exit_status, 0);
    for (const std::string& extra : {std::string(), std::string(" --dense-layers 2 --dense-ffn 512")}) {
      const std::string dir = ::testing::TempDir() + "/fast";
      ASSERT_EQ(epsim::testing::RunCommand("sim/epsim " + args + extra + " --engine analytic --out " + dir).exit_status, 0);
      for (const char* column : {"kept_tokens", "dropped_tokens"})
        EXPECT_EQ(CsvColumn(reference + "/experts.csv", column), CsvColumn(dir + "/experts.csv", column))
            << column << gpus << extra;
    }
  }
}

TEST(StackTest, BundledDecodeScenarioRuns) {
  // scenarios/deepseek-v3-decode-h800.yaml, shrunk in layers and sequences so the suite stays fast.
  const epsim::testing::CommandResult r = epsim::testing::RunCommand(
      "sim/epsim simulate deepseek-v3-decode-h800 --layers 2 --dense-layers 1 --tokens-per-gpu 8");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("deepseek-v3-decode-256xh800"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("through 1 dense + 2 MoE layers)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# decode: time per output token "), std::string::npos) << r.out;
}

// Decode at one token per GPU costs its fixed costs: on one NVSwitch node whose links move
// the few bytes in no time (100 TB/s, 1 ns), with a profile of floors only (route 10,
// permute 20, expert 30 per expert with rows and per shared expert, combine 40 us; rates
// that take no time), the step is route + permute, DeepEP low-latency's dispatch call
// (15.935 us less the 1 ns the replay adds to a flow), the experts of the GPU with the most,
// its combine call (16.861 us less 1 ns) and the combine: within the calls' per-message
// costs (5.30 and 4.74 ns per message) and the flows' ns.
TEST(StackTest, DecodeAtOneTokenPerGpuCostsItsFixedCosts) {
  const std::string topology = ::testing::TempDir() + "/floor_node.yaml", profile = ::testing::TempDir() + "/floors.yaml";
  epsim::testing::WriteFile(topology, "name: floor-node\ngpu: h100\nnodes: 1\ngpus_per_node: 8\n"
                                      "scale_up: {domain_gpus: 8, bandwidth: 100000GB/s, latency: 1ns}\n");
  std::string floors = "schema_version: 2\nname: floors\nsource: datasheet\ndevice:\n  name: Floors\n  memory: 80GB\n"
                       "operations:\n";
  for (const auto& [op, us] : std::vector<std::pair<std::string, int>>{{"route", 10}, {"permute", 20}, {"expert", 30},
                                                                         {"combine", 40}})
    floors += "  " + op + ":\n    form: roofline\n    fixed_us: " + std::to_string(us) +
              "\n    flop_rate_TFLOPs: 1000000\n    mem_rate_GBps: 1000000000\n";
  epsim::testing::WriteFile(profile, floors);
  const std::string dir = ::testing::TempDir() + "/decode_floors";
  const epsim::testing::CommandResult r = epsim::testing::RunCommand(
      "sim/epsim --topology " + topology + " --profile " + profile + " --gpus 8 --nodes 1 --tokens-per-gpu 1 "
      "--experts 8 --shared-experts 1 --top-k 2 --hidden 128 --expert-ffn 128 --a2a low-latency --mode decode "
      "--engine analytic --capacity-factor none --steps 1 --out " + dir);
  ASSERT_EQ(r.exit_status, 0) << r.err;
  // Contiguous placement, 8 experts on 8 GPUs: expert e on GPU e; the most experts with rows
  // on one GPU, with its shared expert.
  const std::vector<double> kept = CsvColumn(dir + "/experts.csv", "kept_tokens");
  double most_experts = 0, most_kept = 0;
  for (const double k : kept) {
    most_experts = std::max(most_experts, k > 0 ? 1.0 : 0.0);
    most_kept = std::max(most_kept, k);
  }
  const double expected = (10 + 20 + (15.935 - 0.001) + 30 * (most_experts + 1) + (16.861 - 0.001) + 40) * 1e-6;
  const double step = CsvColumn(dir + "/steps.csv", "step_time_s")[0];
  EXPECT_GE(step, expected * (1 - 1e-9));
  // A GPU's dispatch sends its token's 2 messages, its combine one per token it computed;
  // each call's flows arrive 1 ns (and a few ps) after they start.
  EXPECT_LE(step, expected + 2 * 5.30e-9 + most_kept * 4.74e-9 + 3e-9) << step - expected;
}

TEST(StackTest, WritesTheSameFilesTwice) {
  const std::string args = "--engine simgrid --layers 3 --mode training --routing zipf:1 --placement eplb "
                           "--redundant-experts 16 --rebalance-interval 1";
  const std::string a = RunStack("same_a", args), b = RunStack("same_b", args);
  for (const char* file : {"summary.json", "steps.csv", "gpus.csv", "experts.csv", "links.csv"}) {
    const std::string fa = ReadFile(a + "/" + file);
    EXPECT_FALSE(fa.empty()) << file;
    EXPECT_EQ(fa, ReadFile(b + "/" + file)) << file;
  }
}

}  // namespace
