// epsim validation: published DeepEP kernel times, predicted from first principles with the
// communication model's defaults (sim/traffic/comm_model.h, every figure cited in
// docs/calibration_sources.md; none taken from these tables), compute switched off
// (no_compute.yaml: the kernels were timed in isolation), uniform routing.
//
// 1. DeepEP V1 normal kernels on H800 (deepep_v1_normal_h800.yaml, copied from
//    shared/reference): topology h800-ib, the hierarchical algorithm (deepep-normal),
//    node-limited routing (min(nodes, 4)), DeepEP's dtypes and sizes (4096 tokens, hidden
//    7168, top-8, 256 experts, fp8 dispatch, bf16 combine). Published bandwidths are turned
//    into kernel times with DeepEP's own counting. DeepEP's benchmark times back-to-back
//    calls that each start with a barrier, so a call lasts as long as the slowest rank's
//    kernel: the prediction is the slowest GPU's dispatch (combine) time.
//    The issue's bar: every case within 20%, median within 10%, not all on one side.
//    With these defaults it is not met (README.md, Accuracy, says why): the NVLink-bound
//    cases (EP8, EP16) are 12-22% fast. To say which
//    link binds, each case runs a second time with NVLink at its nominal 200 GB/s: a time
//    that shrinks by 1 - 160/200 is NVLink-bound, one that does not move is NIC-bound.
// 2. DeepEP's low-latency kernels on one box of 8 x H20 (docs/calibration_sources.md E):
//    128 tokens per rank, 288 experts, dispatch + combine about 222 us. Predicted far too
//    fast (printed); the test pins the model's closed form.
// 3. The low-latency defaults reproduce the GB200 EP4 fits they were derived from (a
//    consistency check of the derivation, not a validation).
// 4. Decode sizes: 1 to 256 tokens per GPU with the low-latency kernels, where the fixed
//    and per-message costs dominate up to about 85 tokens on one 8-GPU box.
// The tests pin what the model does today, so that a change to it shows up here.
#include <gtest/gtest.h>

#include "tests/testing/csv_column.h"
#include "tests/testing/run_command.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using epsim::testing::CommandResult;
using epsim::testing::CsvColumn;
using epsim::testing::ReadFile;
using epsim::testing::RunCommand;
using epsim::testing::WriteFile;

constexpr double kNvlinkCitedGBps = 160;    // topologies/h800-ib.yaml: 200 GB/s x 0.8
constexpr double kNvlinkNominalGBps = 200;  // the same file with efficiency 1
constexpr double kNicGBps = 47;             // 50 GB/s x 0.94

// The deepep-ll defaults (sim/traffic/comm_model.cc, docs/calibration_sources.md E): the
// intercepts and slopes of AISimulate's fits on GB200 EP4.
constexpr double kLlDispatchFixedUs = 15.935, kLlCombineFixedUs = 16.861;
constexpr double kLlDispatchSlopeUs = 0.0934, kLlCombineSlopeUs = 0.1476;
constexpr double kGb200NvlinkGBps = 18 * 40.1;  // topologies/gb200-nvl72.yaml
constexpr double kLlDispatchBytes = 7168 + 4 * 7168 / 128 + 16, kLlCombineBytes = 2 * 7168;
constexpr double kLlDispatchPerMessageUs = (kLlDispatchSlopeUs - 6 * kLlDispatchBytes / (kGb200NvlinkGBps * 1e3)) / 6;
constexpr double kLlCombinePerMessageUs = (kLlCombineSlopeUs - 6 * kLlCombineBytes / (kGb200NvlinkGBps * 1e3)) / 6;

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

double Max(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return (v[v.size() / 2] + v[(v.size() - 1) / 2]) / 2;
}

// Runs sim/epsim with compute switched off; the per-GPU columns of its gpus.csv.
struct EpsimRun {
  std::string dir;
  std::vector<double> Column(const std::string& name) const { return CsvColumn(dir + "/gpus.csv", name); }
};

EpsimRun RunEpsim(const std::string& args, const std::string& name) {
  EpsimRun run{::testing::TempDir() + "/" + name};
  const std::string cmd = "sim/epsim --profile tests/validation/no_compute.yaml --hidden 7168 --expert-ffn 2048 "
                          "--shared-experts 0 --top-k 8 --routing uniform --dispatch-dtype fp8 --combine-dtype bf16 "
                          "--capacity-factor none --seed 1 " + args + " --out " + run.dir;
  const CommandResult r = RunCommand(cmd);
  EXPECT_TRUE(r.exited && r.exit_status == 0) << cmd << "\n" << r.Describe();
  return run;
}

struct Row {
  std::string name;
  double predicted_us = 0, published_us = 0;
  double nvlink_share = 0;  // part of the predicted time that scales with the NVLink rate
  double fixed_us = 0, link_us = 0, wait_us = 0;  // the slowest GPU's call, split
  double error() const { return (predicted_us - published_us) / published_us; }
};

// The h800-ib topology with NVLink at its nominal rate (scale_up.efficiency 1), written once
// for the test; "" when the file no longer has the cited efficiency in its scale_up block.
std::string NominalNvlinkTopology() {
  std::string text = ReadFile("topologies/h800-ib.yaml");
  const std::string cited = "efficiency: 0.8";
  const size_t block = text.find("scale_up:"), at = text.find(cited, block), next = text.find("scale_out:", block);
  if (block == std::string::npos || at == std::string::npos || at > next) return "";
  text.replace(at, cited.size(), "efficiency: 1.0");
  const std::string path = ::testing::TempDir() + "/h800-ib-nominal-nvlink.yaml";
  WriteFile(path, text);
  return path;
}

// The slowest GPU's time in `phase` ("dispatch", "combine") and its split.
Row SlowestCall(const EpsimRun& run, const std::string& phase) {
  const std::vector<double> t = run.Column(phase + "_s"), fixed = run.Column(phase + "_fixed_s");
  const std::vector<double> link = run.Column(phase + "_link_s"), wait = run.Column(phase + "_wait_s");
  const size_t g = std::max_element(t.begin(), t.end()) - t.begin();
  Row row;
  row.predicted_us = t[g] * 1e6;
  row.fixed_us = fixed[g] * 1e6;
  row.link_us = link[g] * 1e6;
  row.wait_us = wait[g] * 1e6;
  return row;
}

TEST(DeepEpValidationTest, NormalKernelsOnH800) {
  YAML::Node ref = YAML::LoadFile("tests/validation/deepep_v1_normal_h800.yaml");
  const double hidden = ref["setup"]["hidden"].as<double>();
  const double fp8_token_bytes = hidden * 2 * (1 + 4.0 / 128) / 2;  // DeepEP's dtype factor
  const double bf16_token_bytes = hidden * 2;
  const std::string nominal_topology = NominalNvlinkTopology();
  ASSERT_FALSE(nominal_topology.empty()) << "topologies/h800-ib.yaml: no scale_up.efficiency 0.8 any more";
  std::vector<Row> rows;
  for (const YAML::Node& c : ref["results"]) {
    const int ep = c["ep"].as<int>();
    const int nodes = std::max(1, ep / 8);
    const std::string args = "--gpus " + std::to_string(ep) + " --nodes " + std::to_string(nodes) +
                             " --tokens-per-gpu 4096 --experts 256 --a2a hierarchical --node-limit " +
                             std::to_string(std::min(nodes, 4)) + " --steps 1 --engine simgrid";
    const EpsimRun run = RunEpsim("--topology h800-ib " + args, "deepep" + std::to_string(ep));
    const EpsimRun nominal = RunEpsim("--topology " + nominal_topology + " " + args, "deepep_nominal" + std::to_string(ep));
    if (HasFailure()) return;
    // DeepEP's counting: intranode, unique tokens a rank receives (incl. its own);
    // internode, unique (token, destination node) pairs incl. the sender's own node.
    const bool intranode = c["type"].as<std::string>() == "intranode";
    const double counted_tokens = Mean(run.Column(intranode ? "unique_tokens_received" : "node_tokens_sent"));
    // Time at 160 GB/s shrinks by this fraction at 200 GB/s when NVLink alone binds.
    const double nvlink_bound_saving = 1 - kNvlinkCitedGBps / kNvlinkNominalGBps;
    for (const char* phase : {"dispatch", "combine"}) {
      const bool dispatch = std::string(phase) == "dispatch";
      Row row = SlowestCall(run, phase);
      row.name = "EP" + std::to_string(ep) + " " + phase;
      row.published_us = counted_tokens * (dispatch ? fp8_token_bytes : bf16_token_bytes) /
                         (c[dispatch ? "dispatch_GBps" : "combine_GBps"].as<double>() * 1e3);
      const double nominal_us = Max(nominal.Column(std::string(phase) + "_s")) * 1e6;
      row.nvlink_share = (1 - nominal_us / row.predicted_us) / nvlink_bound_saving;
      rows.push_back(row);
    }
  }
  std::printf("\n# DeepEP V1 normal kernels on H800: epsim prediction (slowest GPU) vs published\n");
  std::printf("#  case            predicted (us)  published (us)    error   fixed + link + wait (us)   binding link"
              "   model rate   rate the published time implies\n");
  std::vector<double> errors;
  bool any_fast = false, any_slow = false;
  for (const Row& r : rows) {
    const bool nvlink = r.nvlink_share > 0.5;
    const double model_rate = nvlink ? kNvlinkCitedGBps : kNicGBps;
    std::printf("   %-14s %14.0f %15.0f %+8.1f%%   %5.1f + %6.1f + %5.1f   %-6s (%3.0f%%) %7.0f GB/s   %6.1f GB/s\n",
                r.name.c_str(), r.predicted_us, r.published_us, 100 * r.error(), r.fixed_us, r.link_us, r.wait_us,
                nvlink ? "NVLink" : "NIC", 100 * (nvlink ? r.nvlink_share : 1 - r.nvlink_share), model_rate,
                model_rate * r.link_us / (r.published_us - r.fixed_us - r.wait_us));
    errors.push_back(std::fabs(r.error()));
    any_fast = any_fast || r.error() < 0;
    any_slow = any_slow || r.error() > 0;
  }
  const double median = Median(errors), worst = Max(errors);
  const bool met = worst <= 0.20 && median <= 0.10 && any_fast && any_slow;
  std::printf("# median |error| %.1f%%, max |error| %.1f%%, %s; the bar (every case within 20%%, median within 10%%, "
              "both sides) is %s\n",
              100 * median, 100 * worst, any_slow ? "errors on both sides" : "every case fast", met ? "met" : "NOT met");
  ASSERT_EQ(rows.size(), 8u);
  for (const Row& r : rows) {
    // What the model does today: within 25% on every case, and fast: links at their cited
    // achievable rates make the fluid model a lower bound on DeepEP's kernels.
    EXPECT_LT(std::fabs(r.error()), 0.25) << r.name;
    EXPECT_LT(r.predicted_us, r.published_us) << r.name;
    // Each case has one binding link: NVLink (share near 1) or the NIC (near 0).
    EXPECT_TRUE(r.nvlink_share > 0.9 || r.nvlink_share < 0.1) << r.name << ": " << r.nvlink_share;
    // The fixed costs (two launches, 6 us) are under 1% of these large calls.
    EXPECT_NEAR(r.fixed_us, 6.0, 1e-6) << r.name;
  }
  EXPECT_LT(median, 0.11);
}

// One box of 8 x H20. NVLink: 900 GB/s bidirectional per GPU (NVIDIA's H20 datasheet; not in
// docs/calibration_sources.md), so 450 GB/s a way, at Hopper's usable 20.6 of 25 GB/s per
// link (A.1.1) as every Hopper topology here.
constexpr char kH20Box[] = R"(name: h20-box
gpu: h100
nodes: 1
gpus_per_node: 8
scale_up: {domain_gpus: 8, bandwidth: 450GB/s, efficiency: 0.824, latency: 1us}
)";

TEST(DeepEpValidationTest, LowLatencyKernelsOnOneH20Box) {
  const std::string topology = ::testing::TempDir() + "/h20-box.yaml";
  WriteFile(topology, kH20Box);
  // DeepEP's tests/test_low_latency.py defaults: 128 tokens, 288 experts (it also masks 10
  // of the 1024 selections per rank, which the model does not: 1% more messages here).
  const EpsimRun run = RunEpsim("--topology " + topology + " --gpus 8 --nodes 1 --tokens-per-gpu 128 --experts 288 "
                           "--a2a low-latency --steps 1 --engine simgrid", "h20_ll");
  if (HasFailure()) return;
  const std::vector<double> dispatch = run.Column("dispatch_s"), combine = run.Column("combine_s");
  const std::vector<double> sent = run.Column("dispatch_sent_bytes");
  std::vector<double> both(dispatch.size());
  for (size_t g = 0; g < both.size(); ++g) both[g] = (dispatch[g] + combine[g]) * 1e6;
  const double predicted_us = Mean(both), published_us = 222;  // avg_t, per rank
  const double fixed_us = kLlDispatchFixedUs + kLlCombineFixedUs;
  std::printf("\n# DeepEP low-latency kernels, 8 x H20, 128 tokens per rank: epsim vs published (dispatch + combine)\n");
  std::printf("#  predicted %.1f us (fixed %.1f us), published %.0f us: %+.1f%%\n", predicted_us, fixed_us, published_us,
              100 * (predicted_us / published_us - 1));
  // The closed form of the model, per GPU: the fixed costs (measured through the switch),
  // each remote message's cost and its bytes at the usable NVLink rate (450 x 0.824).
  for (size_t g = 0; g < both.size(); ++g) {
    const double messages = sent[g] / kLlDispatchBytes;
    const double link_us = messages * (kLlDispatchBytes + kLlCombineBytes) / (450 * 0.824 * 1e3);
    const double closed_us = fixed_us + messages * (kLlDispatchPerMessageUs + kLlCombinePerMessageUs) + link_us;
    EXPECT_NEAR(both[g], closed_us, 0.05 * closed_us) << "gpu " << g;
  }
  // What the model does today: less than half the published time (README.md, Accuracy).
  EXPECT_GT(predicted_us, 0.35 * published_us);
  EXPECT_LT(predicted_us, 0.5 * published_us);
}

// The deepep-ll defaults were derived from AISimulate's fits on GB200 EP4: run that setup
// and they must come back (to the uneven routing's share: the mean GPU sends a little more
// than the mean).
TEST(DeepEpValidationTest, LowLatencyDefaultsReproduceTheGb200FitsTheyCameFrom) {
  std::printf("\n# DeepEP low-latency on GB200 EP4: epsim (mean GPU) vs the fits t0 + slope x tokens\n");
  std::printf("#  tokens   dispatch (us)   fit (us)   combine (us)   fit (us)\n");
  for (int tokens : {8, 32, 128, 256}) {
    const EpsimRun run = RunEpsim("--topology gb200-nvl72 --gpus 4 --nodes 1 --experts 256 --a2a low-latency --steps 4 "
                             "--engine analytic --tokens-per-gpu " + std::to_string(tokens),
                             "gb200_ll" + std::to_string(tokens));
    if (HasFailure()) return;
    const double dispatch_us = Mean(run.Column("dispatch_s")) * 1e6, combine_us = Mean(run.Column("combine_s")) * 1e6;
    const double dispatch_fit = kLlDispatchFixedUs + kLlDispatchSlopeUs * tokens;
    const double combine_fit = kLlCombineFixedUs + kLlCombineSlopeUs * tokens;
    std::printf("   %6d %15.2f %10.2f %14.2f %10.2f\n", tokens, dispatch_us, dispatch_fit, combine_us, combine_fit);
    EXPECT_NEAR(dispatch_us, dispatch_fit, 0.04 * dispatch_fit) << tokens;
    EXPECT_NEAR(combine_us, combine_fit, 0.04 * combine_fit) << tokens;
  }
}

// Decode: with the low-latency kernels a call's fixed and per-message costs dominate while
// its bytes take less time than they do. On one 8-GPU H100 box a token sends 7 remote
// messages per phase, each costing its per-message cost and its bytes at 370.8 GB/s; the
// calls cost 32.8 us for both phases, through the switch: 30.8 us of fixed costs and one
// switch latency (1 us) per phase while bytes move. The reports count per-message costs with
// the fixed ones (fixed_cost_s: all but moving bytes and waiting), which are then the larger
// part below n* = (32.8 - 4) / (7 x (bytes / rate - per message)), about 85 tokens.
TEST(DeepEpValidationTest, DecodeSizesAreFixedCostBound) {
  const double per_message_us = kLlDispatchPerMessageUs + kLlCombinePerMessageUs;
  const double bytes_us = (kLlDispatchBytes + kLlCombineBytes) / (370.8 * 1e3);
  const double fixed_us = kLlDispatchFixedUs + kLlCombineFixedUs, latency_us = 2;
  const double crossover = (fixed_us - 2 * latency_us) / (7 * (bytes_us - per_message_us));
  std::printf("\n# Decode on 8 x H100 (one NVLink domain), low-latency kernels: dispatch + combine per GPU\n");
  std::printf("#  tokens   time (us)   fixed + per-message share   (closed form: 1/2 at %.0f tokens)\n", crossover);
  for (int tokens : {1, 2, 4, 8, 16, 32, 64, 128, 256}) {
    const EpsimRun run = RunEpsim("--topology dgx-h100 --gpus 8 --nodes 1 --experts 256 --a2a low-latency --steps 2 "
                                  "--engine analytic --tokens-per-gpu " + std::to_string(tokens),
                                  "decode" + std::to_string(tokens));
    if (HasFailure()) return;
    const std::vector<double> d = run.Column("dispatch_s"), c = run.Column("combine_s");
    const std::vector<double> df = run.Column("dispatch_fixed_s"), cf = run.Column("combine_fixed_s");
    double time = 0, fixed = 0;
    for (size_t g = 0; g < d.size(); ++g) {
      time += d[g] + c[g];
      fixed += df[g] + cf[g];
    }
    const double share = fixed / time;
    std::printf("   %6d %11.1f %27.2f\n", tokens, time / d.size() * 1e6, share);
    // The closed form's share, within 3 points (the routing is uneven across GPUs).
    const double messages = 7.0 * tokens;
    const double closed = (fixed_us - latency_us + messages * per_message_us) /
                          (fixed_us + messages * (per_message_us + bytes_us));
    EXPECT_NEAR(share, closed, 0.03) << tokens;
    if (tokens < 0.8 * crossover) { EXPECT_GT(share, 0.5) << tokens; }
    if (tokens > 1.2 * crossover) { EXPECT_LT(share, 0.5) << tokens; }
  }
}

}  // namespace
