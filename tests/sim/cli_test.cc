// epsim tests: the epsim command line, end to end (exit codes, errors, result files).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <vector>
#include <sstream>
#include <string>

#include "tests/testing/csv_column.h"
#include "tests/testing/run_command.h"

namespace {

using epsim::testing::CsvColumn;

using CliRun = epsim::testing::CommandResult;
using epsim::testing::ReadFile;

// Runs sim/epsim with `args` (a shell-quoted string) and captures stdout and stderr.
CliRun Epsim(const std::string& args) { return epsim::testing::RunCommand("sim/epsim " + args); }

int Lines(const std::string& text) { return epsim::testing::CountLines(text); }

const char kSmall[] =
    "--gpus 16 --nodes 2 --tokens-per-gpu 64 --experts 32 --top-k 4 --hidden 1024 "
    "--expert-ffn 512 --steps 2";

TEST(CliTest, MissingScenarioFile) {
  CliRun r = Epsim("simulate no/such/scenario.yaml");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("no/such/scenario.yaml"), std::string::npos) << r.err;
}

TEST(CliTest, BadFlagValue) {
  CliRun r = Epsim("--top-k abc");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--top-k"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("abc"), std::string::npos) << r.err;
}

TEST(CliTest, UnknownFlagAndMissingValue) {
  CliRun r = Epsim("--frobnicate 3");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_NE(r.err.find("--frobnicate"), std::string::npos);
  r = Epsim("--steps");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_NE(r.err.find("--steps"), std::string::npos);
}

TEST(CliTest, UnknownTopologyName) {
  CliRun r = Epsim("--topology dgx-z900");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("dgx-z900"), std::string::npos);
}

TEST(CliTest, TooManyGpusForTopology) {
  CliRun r = Epsim(std::string(kSmall) + " --gpus 64 --experts 64");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(r.err.rfind("epsim: error: command line: --gpus: '64': more GPUs than", 0), 0u) << r.err;
}

TEST(CliTest, HelpListsEveryFlag) {
  CliRun r = Epsim("--help");
  EXPECT_EQ(r.exit_status, 0);
  for (const char* flag : {"--topology", "--nodes", "--gpus", "--tokens-per-gpu", "--hidden",
                           "--expert-ffn", "--experts", "--top-k", "--routing", "--capacity-factor",
                           "--dispatch-dtype", "--steps", "--seed", "--profile", "--out"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

TEST(CliTest, WritesResultsDeterministically) {
  const std::string a = ::testing::TempDir() + "/run_a", b = ::testing::TempDir() + "/run_b";
  CliRun ra = Epsim(std::string(kSmall) + " --routing zipf:1 --capacity-factor 1.0 --out " + a);
  ASSERT_EQ(ra.exit_status, 0) << ra.err;
  CliRun rb = Epsim(std::string(kSmall) + " --routing zipf:1 --capacity-factor 1.0 --out " + b);
  ASSERT_EQ(rb.exit_status, 0) << rb.err;
  EXPECT_EQ(ra.out.substr(0, ra.out.rfind("# results")), rb.out.substr(0, rb.out.rfind("# results")));
  for (const char* file : {"summary.json", "steps.csv", "gpus.csv", "experts.csv", "links.csv"}) {
    std::string fa = ReadFile(a + "/" + file), fb = ReadFile(b + "/" + file);
    EXPECT_FALSE(fa.empty()) << file;
    EXPECT_EQ(fa, fb) << file;
  }
  const std::string summary = ReadFile(a + "/summary.json");
  for (const char* key : {"\"step_time_s\"", "\"step_time_p50_s\"", "\"step_time_p99_s\"", "\"phases_s\"",
                          "\"route\"", "\"dispatch\"", "\"expert\"", "\"combine\"", "\"stall_s\"",
                          "\"median\"", "\"token_skew\"", "\"expert_skew\"", "\"dropped_tokens\"",
                          "\"dropped_fraction\"", "\"a2a_GBps_per_gpu\"", "\"network_model\"",
                          "\"epsim_version\"", "\"scenario\"", "\"workload.routing\": \"zipf:1\""})
    EXPECT_NE(summary.find(key), std::string::npos) << key;
  // gpus.csv: a header and one row per (step, GPU).
  EXPECT_EQ(Lines(ReadFile(a + "/gpus.csv")), 1 + 2 * 16);
  EXPECT_EQ(Lines(ReadFile(a + "/experts.csv")), 1 + 2 * 32);
  // No temporary files left behind.
  EXPECT_NE(std::system(("ls " + a + " | grep -q tmp").c_str()), 0);
}

TEST(CliTest, AnyThreadCountWritesTheSameFiles) {
  // The routing sampler splits the sources over the threads, the fast path and links.csv
  // split the links: 128 GPUs on the fast path (processor sharing, with faults), and the
  // SimGrid replay (sampling only).
  const std::string fast = "--gpus 128 --nodes 16 --tokens-per-gpu 256 --routing zipf:1 --steps 2 --engine analytic "
                           "--sharing processor-sharing --fault nic:3.1:0.5 --fault gpu:7:0.8@1";
  for (const std::string& args : {fast, std::string(kSmall) + " --routing zipf:1 --engine simgrid"}) {
    const std::string one = ::testing::TempDir() + "/threads_1", three = ::testing::TempDir() + "/threads_3";
    CliRun r1 = Epsim(args + " --threads 1 --out " + one);
    ASSERT_EQ(r1.exit_status, 0) << r1.err;
    CliRun r3 = Epsim(args + " --threads 3 --out " + three);
    ASSERT_EQ(r3.exit_status, 0) << r3.err;
    EXPECT_EQ(r1.out.substr(0, r1.out.rfind("# results")), r3.out.substr(0, r3.out.rfind("# results"))) << args;
    for (const char* file : {"summary.json", "steps.csv", "gpus.csv", "experts.csv", "links.csv"})
      EXPECT_EQ(ReadFile(one + "/" + file), ReadFile(three + "/" + file)) << file << ": " << args;
  }
}

TEST(CliTest, DifferentSeedsDiffer) {
  CliRun a = Epsim(std::string(kSmall) + " --routing zipf:1 --seed 1");
  CliRun b = Epsim(std::string(kSmall) + " --routing zipf:1 --seed 2");
  ASSERT_EQ(a.exit_status, 0);
  ASSERT_EQ(b.exit_status, 0);
  EXPECT_NE(a.out, b.out);
}

TEST(CliTest, EveryBundledTopologyRuns) {
  for (const char* topo : {"dgx-h100", "dgx-h200", "h800-ib", "gb200-nvl72", "dgx-a100-hdr"}) {
    CliRun r = Epsim(std::string("--topology ") + topo + " --profile h100 --gpus 16 --nodes 4 "
                  "--tokens-per-gpu 64 --experts 32 --top-k 4 --hidden 1024 --expert-ffn 512");
    EXPECT_EQ(r.exit_status, 0) << topo << ": " << r.err;
    EXPECT_NE(r.out.find("mean"), std::string::npos) << topo;
  }
}

TEST(CliTest, EveryBundledProfileLoads) {
  for (const char* profile : {"h100", "h200", "h800", "b200", "gb200", "a100"}) {
    CliRun r = Epsim(std::string(kSmall) + " --profile " + profile + " --steps 1");
    EXPECT_EQ(r.exit_status, 0) << profile << ": " << r.err;
    EXPECT_NE(r.out.find("source: datasheet"), std::string::npos) << profile;
  }
}

TEST(CliTest, CompareTabulatesEveryVariant) {
  const std::string out = ::testing::TempDir() + "/compare";
  CliRun r = Epsim(std::string(kSmall) + " --engine analytic --routing zipf:1 " +
                   "--capacity-factor 1.0 compare --vary a2a=direct,hierarchical "
                   "--vary placement=contiguous,eplb --out " + out);
  // `compare` must come first: it is a command, not a scenario.
  EXPECT_NE(r.exit_status, 0);
  r = Epsim("compare none " + std::string(kSmall) + " --topology dgx-h100 --engine analytic "
            "--routing zipf:1 --capacity-factor 1.0 --vary a2a=direct,hierarchical "
            "--vary placement=contiguous,eplb --out " + out + " --jobs 2");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  for (const char* variant : {"a2a=direct placement=contiguous", "a2a=direct placement=eplb",
                              "a2a=hierarchical placement=contiguous", "a2a=hierarchical placement=eplb"})
    EXPECT_NE(r.out.find(variant), std::string::npos) << variant << "\n" << r.out;
  // Four variants, two steps each.
  EXPECT_EQ(Lines(ReadFile(out + "/sweep.csv")), 1 + 4 * 2);
  CliRun bad = Epsim("compare default --vary a2a");
  EXPECT_EQ(bad.exit_status, 2);
  EXPECT_EQ(Lines(bad.err), 1) << bad.err;
  EXPECT_NE(bad.err.find("--vary"), std::string::npos) << bad.err;
}

TEST(CliTest, ShapesOutsideAMeasuredProfileWarnOncePerOperation) {
  // cpu-dev.yaml was fitted on up to 2048 tokens for route and combine: ask for 4096, twice.
  CliRun r = Epsim("--profile calibrate/profiles/cpu-dev.yaml --steps 2 --tokens-per-gpu 4096 "
                   "--gpus 16 --nodes 2 --experts 32 --top-k 4 --hidden 1024 --expert-ffn 512 "
                   "--engine analytic");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  for (const char* op : {"'route'", "'combine'"}) {
    const size_t first = r.err.find(op);
    ASSERT_NE(first, std::string::npos) << op << "\n" << r.err;
    EXPECT_EQ(r.err.find(op, first + 1), std::string::npos) << op << " warned twice";
  }
  EXPECT_NE(r.err.find("validity range"), std::string::npos);
}

// Each GPU's step splits exactly into compute, waiting for peers, fixed and per-message
// costs, exposed communication and contention; each of its dispatch and combine calls into
// fixed and per-message costs, moving data and waiting (both engines, with DeepEP's
// barrier and SMs too).
TEST(CliTest, TimeLostAddsUpToTheStep) {
  // In training each GPU has a record per pass, whose time adds up to that pass's; the two
  // passes add up to the step.
  // The last two: EPLB rebalancing at step 1, its weights moved beside the step.
  for (const char* engine : {"simgrid", "analytic", "analytic --a2a hierarchical --comm-sms 4",
                             "analytic --mode training", "simgrid --mode training --overlap two-batch",
                             "simgrid --mode training --overlap forward-backward",
                             "simgrid --placement eplb --redundant-experts 16 --rebalance-interval 1 "
                             "--rebalance-cost overlapped",
                             "analytic --overlap two-batch --placement eplb --redundant-experts 16 "
                             "--rebalance-interval 1 --rebalance-cost overlapped"}) {
    const std::string dir = ::testing::TempDir() + "/attr_" + std::to_string(std::hash<std::string>()(engine));
    CliRun r = Epsim(std::string(kSmall) + " --routing zipf:1 --engine " + engine + " --out " + dir);
    ASSERT_EQ(r.exit_status, 0) << r.err;
    const bool training = std::string(engine).find("training") != std::string::npos;
    const bool both = std::string(engine).find("forward-backward") != std::string::npos;  // one replay per step
    const std::vector<double> step_time = CsvColumn(dir + "/steps.csv", "step_time_s");
    const std::vector<double> forward = CsvColumn(dir + "/steps.csv", "forward_s");
    const std::vector<double> backward = CsvColumn(dir + "/steps.csv", "backward_s");
    ASSERT_EQ(step_time.size(), 2u);
    for (size_t i = 0; i < step_time.size(); ++i) {
      if (!both) {  // one replay per pass: they add up, to the CSV's 9 digits
        EXPECT_NEAR(step_time[i], forward[i] + backward[i], 1e-8 * step_time[i]) << engine;
      }
      EXPECT_EQ(backward[i] > 0, training) << engine;
    }
    const std::string gpus = dir + "/gpus.csv";
    const std::vector<std::string> pass = epsim::testing::CsvTextColumn(gpus, "pass");
    const std::vector<double> step = CsvColumn(gpus, "step");
    std::map<std::string, std::vector<double>> cols;
    for (const char* name : {"compute_s", "wait_peers_s", "fixed_cost_s", "exposed_comm_s", "contention_s", "route_s",
                             "expert_s", "dispatch_s", "combine_s"})
      cols[name] = CsvColumn(gpus, name);
    for (const std::string phase : {"dispatch", "combine"})
      for (const char* part : {"_fixed_s", "_link_s", "_wait_s"}) cols[phase + part] = CsvColumn(gpus, phase + part);
    auto col = [&](const std::string& name) -> const std::vector<double>& { return cols.at(name); };
    const std::vector<double>&compute = col("compute_s"), &wait = col("wait_peers_s"), &fixed = col("fixed_cost_s"),
                              &exposed = col("exposed_comm_s"), &contention = col("contention_s"),
                              &route = col("route_s"), &expert = col("expert_s");
    ASSERT_EQ(pass.size(), (training && !both ? 4u : 2u) * 16);
    for (size_t row = 0; row < pass.size(); ++row) {
      ASSERT_EQ(pass[row], both ? "forward+backward" : !training || row % 32 < 16 ? "forward" : "backward") << row;
      const size_t s = static_cast<size_t>(step[row]);
      const double pass_time = both ? step_time[s] : pass[row] == "forward" ? forward[s] : backward[s];
      // Up to SimGrid's timing precision (flows completed within surf/precision of each other).
      const double total = compute[row] + wait[row] + fixed[row] + exposed[row] + contention[row];
      EXPECT_NEAR(total, pass_time, 1e-4 * pass_time) << engine << " row " << row;
      if (std::string(engine).find("--overlap") != std::string::npos) continue;  // phases overlap
      // The combine phase (combine_s) ends with the GPU's reduce: compute besides route and
      // expert.
      const double reduce = compute[row] - route[row] - expert[row];
      for (const std::string phase : {"dispatch", "combine"}) {
        const double parts = col(phase + "_fixed_s")[row] + col(phase + "_link_s")[row] +
                             col(phase + "_wait_s")[row] + (phase == "combine" ? reduce : 0);
        const double whole = col(phase + "_s")[row];
        EXPECT_NEAR(parts, whole, 1e-4 * whole + 1e-12) << engine << " row " << row << " " << phase;
      }
    }
  }
}

// A call costs its fixed cost (a measured floor less the 1 us switch latency the replay adds
// to each flow, except DeepEP normal's launches) plus one per-message cost per message the
// GPU sends: with
// nccl one message per peer (16 GPUs, every peer gets tokens: 15), with DeepEP's
// low-latency kernels one per (token, expert) pair leaving the GPU (its bytes / 1040 B, the
// bf16 payload of hidden 512 + 16 bytes), with DeepEP's normal kernels none.
TEST(CliTest, CallCostsCountTheMessagesEachGpuSends) {
  const double nccl_per_message = (10.7e-6 - 3.7e-6) / 6, nccl_fixed = 3.7e-6 - nccl_per_message - 1e-6;
  const double ll_per_message = (0.0934e-6 - 6 * 7408 / 721.8e9) / 6;
  struct Case {
    const char* args;
    double fixed_s;
  };
  for (const Case& c : {Case{"", nccl_fixed}, Case{"--a2a low-latency --hidden 512", 15.935e-6 - 1e-6},
                        Case{"--a2a hierarchical", 6e-6}}) {
    const std::string dir = ::testing::TempDir() + "/calls" + std::to_string(std::string(c.args).size());
    CliRun r = Epsim(std::string(kSmall) + " --routing uniform --engine analytic --dispatch-dtype bf16 " + c.args +
                     " --out " + dir);
    ASSERT_EQ(r.exit_status, 0) << r.err;
    const std::vector<double> fixed = CsvColumn(dir + "/gpus.csv", "dispatch_fixed_s");
    const std::vector<double> sent = CsvColumn(dir + "/gpus.csv", "dispatch_sent_bytes");
    ASSERT_EQ(fixed.size(), 2u * 16);
    for (size_t i = 0; i < fixed.size(); ++i) {
      double expected = c.fixed_s;
      if (std::string(c.args).empty()) expected += 15 * nccl_per_message;
      if (std::string(c.args).find("low-latency") != std::string::npos) expected += sent[i] / 1040 * ll_per_message;
      EXPECT_NEAR(fixed[i], expected, 1e-12) << c.args << " row " << i;
    }
  }
}

TEST(CliTest, TensorParallelAllGatherMatchesClosedForm) {
  // TP inside each 8-GPU NVSwitch domain: each GPU sends its 64 fp8 tokens (the default
  // scenario's dtype: 1024 x (1 + 4/128) = 1056 bytes each) to the 7 others: 7 x 64 x 1056
  // bytes through its port at NCCL's usable Hopper NVLink rate (18 links x 20.6 GB/s), plus
  // NCCL's measured cost of an 8-GPU call that moves almost nothing, through the switch:
  // 10.7 us (docs/calibration_sources.md D.2, all-to-all of 128 B-4 KB on 8 GPUs).
  const std::string dir = ::testing::TempDir() + "/tp";
  CliRun r = Epsim(std::string(kSmall) + " --parallelism tp --engine analytic --out " + dir);
  ASSERT_EQ(r.exit_status, 0) << r.err;
  std::ifstream gpus(dir + "/gpus.csv");
  std::string line;
  std::getline(gpus, line);
  const double expected = 7.0 * 64 * 1056 / (18 * 20.6e9) + 10.7e-6;
  int rows = 0;
  while (std::getline(gpus, line)) {
    double route, dispatch;
    int step, gpu, node;
    ASSERT_EQ(std::sscanf(line.c_str(), "%d,%d,%d,%lf,%lf", &step, &gpu, &node, &route, &dispatch), 5);
    EXPECT_NEAR(dispatch, expected, 0.01 * expected) << "gpu " << gpu;
    ++rows;
  }
  EXPECT_EQ(rows, 2 * 16);
  CliRun bad = Epsim(std::string(kSmall) + " --parallelism tp --a2a hierarchical");
  EXPECT_EQ(bad.exit_status, 2);
  EXPECT_NE(bad.err.find("--a2a"), std::string::npos) << bad.err;
}

TEST(CliTest, RoutingFromATraceOfExpertCounts) {
  // Step 0 of the trace: only experts 0-3 have tokens, so with top-4 every token picks
  // exactly them; step 1: all 32 experts equally.
  const std::string trace = ::testing::TempDir() + "/trace.csv";
  {
    std::ofstream out(trace);
    out << "step,expert,tokens\n";
    for (int e = 0; e < 4; ++e) out << "0," << e << ",100\n";
    for (int e = 0; e < 32; ++e) out << "1," << e << ",7\n";
  }
  const std::string dir = ::testing::TempDir() + "/trace_run";
  CliRun r = Epsim(std::string(kSmall) + " --engine analytic --routing trace:" + trace + " --out " + dir);
  ASSERT_EQ(r.exit_status, 0) << r.err;
  std::ifstream experts(dir + "/experts.csv");
  std::string line;
  std::getline(experts, line);
  int64_t step0_other = 0, step0_hot = 0, step1_min = 1 << 30;
  while (std::getline(experts, line)) {
    int step, expert;
    long long kept, dropped;
    ASSERT_EQ(std::sscanf(line.c_str(), "%d,%d,%lld,%lld", &step, &expert, &kept, &dropped), 4);
    if (step == 0) (expert < 4 ? step0_hot : step0_other) += kept + dropped;
    if (step == 1) step1_min = std::min<int64_t>(step1_min, kept + dropped);
  }
  EXPECT_EQ(step0_hot, 4LL * 16 * 64);  // 16 GPUs x 64 tokens, each to all four
  EXPECT_EQ(step0_other, 0);
  EXPECT_GT(step1_min, 0);
  // A broken trace names its file and line.
  {
    std::ofstream out(trace);
    out << "step,expert,tokens\n0,99,5\n";
  }
  r = Epsim(std::string(kSmall) + " --routing trace:" + trace);
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("line 2: expert: '99'"), std::string::npos) << r.err;
}

TEST(CliTest, DefaultScenarioShapeRunsSmall) {
  // The bundled default scenario, shrunk in tokens and steps so the suite stays fast.
  CliRun r = Epsim("simulate default --tokens-per-gpu 256 --steps 1");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("deepseek-v3-64xh100"), std::string::npos);
  // engine auto: 64 GPUs, direct, one step: 8064 flows, a SimGrid replay of a few seconds.
  EXPECT_NE(r.out.find("# network   : engine auto chose SimGrid: a SimGrid replay of 8064 flows per step x 1 steps"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("; CM02 max-min"), std::string::npos) << r.out;
}

// A slowed GPU computes 1/F as long from its fault's step on, and nothing else changes; the
// report names the faults, and repeated --fault flags add up.
TEST(CliTest, FaultsSlowWhatTheyNameFromTheirStep) {
  const std::string base = "--gpus 16 --nodes 2 --tokens-per-gpu 256 --steps 2 --engine analytic --out ";
  const std::string clean = ::testing::TempDir() + "/no_fault", slow = ::testing::TempDir() + "/gpu_fault";
  ASSERT_EQ(Epsim(base + clean).exit_status, 0);
  CliRun r = Epsim(base + slow + " --fault gpu:3:0.5@1 --fault link:gpu-5-nvl-up:0.5@1");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("# faults    : GPU 3 at 0.5 of its speed from step 1; gpu-5-nvl-up at 0.5 of its rate "
                       "from step 1"),
            std::string::npos)
      << r.out;
  EXPECT_NE(ReadFile(slow + "/summary.json").find("\"faults\": \"gpu:3:0.5@1;link:gpu-5-nvl-up:0.5@1\""),
            std::string::npos);
  const std::vector<double> a = CsvColumn(clean + "/gpus.csv", "compute_s"), b = CsvColumn(slow + "/gpus.csv", "compute_s");
  ASSERT_EQ(a.size(), 32u);
  ASSERT_EQ(b.size(), 32u);
  for (int row = 0; row < 32; ++row) {  // rows: step 0 GPUs 0..15, then step 1
    const double want = row == 16 + 3 ? 2 * a[row] : a[row];
    EXPECT_NEAR(b[row], want, 1e-12 + 1e-9 * want) << "row " << row;
  }
  // The slowed NVLink port: gpu-5-nvl-up carries the same bytes at half the rate in step 1.
  const std::string links = ReadFile(slow + "/links.csv");
  EXPECT_NE(links.find("1,gpu-5-nvl-up,nvlink,1.854e+11,"), std::string::npos) << links.substr(0, 400);
}

// A leaf switch down is its NICs down (no flow reaches its spine links): rail 3's leaf of
// two DGX nodes gives the files of nic-0.3 and nic-1.3 down, byte for byte; and against
// the run without faults, the GPUs on rail 3 (3 and 11) send through peers, so no flow
// leaves or enters a NIC on rail 3.
TEST(CliTest, ALeafDownIsItsNicsDown) {
  const std::string base = "--gpus 16 --nodes 2 --tokens-per-gpu 256 --steps 1 --engine analytic --out ";
  const std::string leaf = ::testing::TempDir() + "/leaf_down", nics = ::testing::TempDir() + "/nics_down";
  CliRun r = Epsim(base + leaf + " --fault switch:leaf-3:0");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("# faults    : switch leaf-3 down"), std::string::npos) << r.out;
  ASSERT_EQ(Epsim(base + nics + " --fault nic:0.3:0 --fault nic:1.3:0").exit_status, 0);
  for (const char* file : {"steps.csv", "gpus.csv", "links.csv"})
    EXPECT_EQ(ReadFile(leaf + "/" + file), ReadFile(nics + "/" + file)) << file;
  const std::string links = ReadFile(leaf + "/links.csv");
  for (const char* port : {"nic-0.3-up", "nic-0.3-down", "nic-1.3-up", "nic-1.3-down", "leaf-3-spine", "-leaf-3,"})
    EXPECT_EQ(links.find(port), std::string::npos) << port;
  EXPECT_NE(links.find("nic-0.2-up"), std::string::npos);
}

// An NVLink port down: GPU 5's sends inside its node go through its NIC instead. The
// routing is the same as without the fault, so its NIC's up link carries exactly what it
// carried plus what its NVLink port did, and the port carries nothing.
TEST(CliTest, AnNvlinkPortDownSendsThroughTheNic) {
  const std::string base = "--gpus 16 --nodes 2 --tokens-per-gpu 256 --steps 1 --engine analytic --out ";
  const std::string clean = ::testing::TempDir() + "/nvl_clean", down = ::testing::TempDir() + "/nvl_down";
  ASSERT_EQ(Epsim(base + clean).exit_status, 0);
  CliRun r = Epsim(base + down + " --fault link:gpu-5-nvl-up:0");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("# faults    : gpu-5-nvl-up down"), std::string::npos) << r.out;
  auto bytes_of = [](const std::string& dir, const std::string& link) {  // links.csv: step,link,tier,capacity_Bps,bytes,...
    const std::string csv = ReadFile(dir + "/links.csv");
    const size_t row = csv.find("\n0," + link + ",");
    if (row == std::string::npos) return 0.0;  // only links that carried bytes have a row
    size_t field = row + 1;
    for (int i = 0; i < 4; ++i) field = csv.find(',', field) + 1;
    return std::stod(csv.substr(field, csv.find(',', field) - field));
  };
  const double nvlink = bytes_of(clean, "gpu-5-nvl-up");
  ASSERT_GT(nvlink, 0);
  EXPECT_EQ(bytes_of(down, "gpu-5-nvl-up"), 0);
  EXPECT_DOUBLE_EQ(bytes_of(down, "nic-0.5-up"), bytes_of(clean, "nic-0.5-up") + nvlink);
  EXPECT_DOUBLE_EQ(bytes_of(down, "gpu-5-nvl-down"), bytes_of(clean, "gpu-5-nvl-down"));  // it still receives
}

// PXN on a rail-optimized fabric: every flow that leaves a node stays on its rail, so no
// byte climbs to a spine (links.csv has no spine row) and NVLink carries the relayed bytes.
TEST(CliTest, PxnKeepsCrossRailTrafficOffTheSpines) {
  const std::string off = ::testing::TempDir() + "/pxn_off", on = ::testing::TempDir() + "/pxn_on";
  const std::string base = "--gpus 16 --nodes 2 --tokens-per-gpu 256 --steps 1 --engine analytic --out ";
  ASSERT_EQ(Epsim(base + off).exit_status, 0);
  CliRun r = Epsim(base + on + " --pxn on");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(ReadFile(off + "/links.csv").find(",spine,"), std::string::npos);
  EXPECT_EQ(ReadFile(on + "/links.csv").find(",spine,"), std::string::npos);
  EXPECT_NE(r.out.find("all-to-all direct with PXN"), std::string::npos) << r.out;
  // A rail-only network (no spines) relays the same way: on 2 nodes (one leaf per rail in
  // both files) it gives the PXN run's files byte for byte.
  const std::string rail_only = ::testing::TempDir() + "/rail_only";
  ASSERT_EQ(Epsim(base + rail_only + " --topology rail-only-h100").exit_status, 0);
  for (const char* file : {"steps.csv", "gpus.csv", "links.csv"})
    EXPECT_EQ(ReadFile(rail_only + "/" + file), ReadFile(on + "/" + file)) << file;
  r = Epsim(base + on + " --pxn on --a2a hierarchical");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_NE(r.err.find("--pxn: 'on': relays the direct all-to-all"), std::string::npos) << r.err;
}

// engine auto beyond SimGrid's reach: 256 GPUs with the direct all-to-all are about 130k
// flows a step, minutes on SimGrid (BENCHMARKS.md), so the fast path runs, and says why;
// an engine asked for by name runs whatever the size.
TEST(CliTest, EngineAutoTakesTheFastPathWhereSimGridWouldTakeMinutes) {
  const std::string dir = ::testing::TempDir() + "/auto256";
  CliRun r = Epsim("--gpus 256 --nodes 32 --tokens-per-gpu 64 --steps 1 --out " + dir);
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("# network   : engine auto chose the fast path"), std::string::npos) << r.out;
  // ... and there, exact max-min would take longer than the fast path allows it (10 s).
  EXPECT_NE(r.out.find("(over 30 s); analytic per-link processor sharing, since exact max-min would take about"),
            std::string::npos)
      << r.out;
  EXPECT_NE(ReadFile(dir + "/summary.json").find("\"engine\": \"analytic\""), std::string::npos);
  r = Epsim("--gpus 16 --nodes 2 --tokens-per-gpu 64 --steps 1 --engine analytic --out " + dir);
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("# network   : analytic max-min fair sharing, exact (about"), std::string::npos) << r.out;
}

// Processor sharing says where it may be well off max-min: where links inside the fabric
// may bind flows that bind elsewhere too (a NIC at half rate; 2:1 between pods once the run
// spans two), not on a non-blocking fabric, within one pod, or with a GPU computing slower.
TEST(CliTest, ProcessorSharingSaysWhereItMayBeOff) {
  const std::string dir = ::testing::TempDir() + "/sharing_hint";
  const std::string ps = " --tokens-per-gpu 64 --steps 1 --engine analytic --sharing processor-sharing --out " + dir;
  const std::string hint = "as they may here (links inside the fabric oversubscribed, or a part slowed or down";
  const std::string plain = "analytic per-link processor sharing (sharing processor-sharing): it approximates max-min "
                            "where flows bind on different links; route latency";
  for (const char* args : {"--gpus 16 --nodes 2 --fault nic:1.0:0.5",
                           "--gpus 1032 --nodes 129 --topology cloud-h100-2to1 --experts 8 --top-k 2"}) {
    const CliRun r = Epsim(args + ps);
    ASSERT_EQ(r.exit_status, 0) << args << ": " << r.err;
    EXPECT_NE(r.out.find(hint), std::string::npos) << args << ": " << r.out;
  }
  for (const char* args : {"--gpus 16 --nodes 2", "--gpus 16 --nodes 2 --fault gpu:3:0.5",
                           "--gpus 1024 --nodes 128 --topology cloud-h100-2to1 --experts 8 --top-k 2"}) {
    const CliRun r = Epsim(args + ps);
    ASSERT_EQ(r.exit_status, 0) << args << ": " << r.err;
    EXPECT_NE(r.out.find(plain), std::string::npos) << args << ": " << r.out;
    EXPECT_EQ(r.out.find(hint), std::string::npos) << args << ": " << r.out;
  }
}

}  // namespace
