// epsim tests: training steps (workload.mode training), end to end: the backward pass
// against the forward it mirrors (sim/engine/step_builder.h), on both engines.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/testing/csv_column.h"
#include "tests/testing/run_command.h"

namespace {

using epsim::testing::CsvColumn;
using epsim::testing::CsvTextColumn;
using epsim::testing::ReadFile;

constexpr int kGpus = 16;
const char kSmall[] =
    "--gpus 16 --nodes 2 --tokens-per-gpu 64 --experts 32 --top-k 4 --hidden 1024 "
    "--expert-ffn 512 --steps 2 --routing zipf:1 --mode training";

epsim::testing::CommandResult Epsim(const std::string& args) {
  return epsim::testing::RunCommand("sim/epsim " + args);
}

// One gpus.csv column split by pass: [step * kGpus + gpu], forward and backward.
struct ByPass {
  std::vector<double> forward, backward;
};
ByPass Column(const std::string& dir, const std::string& name) {
  const std::vector<double> values = CsvColumn(dir + "/gpus.csv", name);
  const std::vector<std::string> pass = CsvTextColumn(dir + "/gpus.csv", "pass");
  ByPass out;
  for (size_t i = 0; i < values.size(); ++i) (pass[i] == "forward" ? out.forward : out.backward).push_back(values[i]);
  return out;
}

std::string RunTraining(const std::string& name, const std::string& args) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  const epsim::testing::CommandResult r = Epsim(std::string(kSmall) + " " + args + " --out " + dir);
  EXPECT_EQ(r.exit_status, 0) << r.err;
  return dir;
}

// The combine's gradients leave each token's GPU as its dispatch did and the dispatch's come
// back as its combine did: with one dtype and NCCL (no per-kernel metadata on the wire),
// each GPU sends in the backward's first all-to-all exactly what it received in the
// forward's combine, and so on round. In the dispatch's dtype (fp8 here) the backward's
// first all-to-all moves the forward dispatch's bytes (DeepSeek-V3's precisions).
TEST(TrainingTest, BackwardAllToAllsAreTheForwardsWithDirectionsSwapped) {
  const std::string dir = RunTraining("swap", "--engine analytic --dispatch-dtype bf16 --combine-dtype bf16");
  const ByPass dispatch_sent = Column(dir, "dispatch_sent_bytes"), dispatch_recv = Column(dir, "dispatch_recv_bytes");
  const ByPass combine_sent = Column(dir, "combine_sent_bytes"), combine_recv = Column(dir, "combine_recv_bytes");
  ASSERT_EQ(dispatch_sent.forward.size(), 2u * kGpus);
  ASSERT_EQ(dispatch_sent.backward.size(), 2u * kGpus);
  double total = 0;
  for (size_t i = 0; i < dispatch_sent.forward.size(); ++i) {
    EXPECT_EQ(dispatch_sent.backward[i], combine_recv.forward[i]) << "row " << i;
    EXPECT_EQ(dispatch_recv.backward[i], combine_sent.forward[i]) << "row " << i;
    EXPECT_EQ(combine_sent.backward[i], dispatch_recv.forward[i]) << "row " << i;
    EXPECT_EQ(combine_recv.backward[i], dispatch_sent.forward[i]) << "row " << i;
    total += dispatch_sent.backward[i];
  }
  EXPECT_GT(total, 0);
  const std::string fp8 = RunTraining("swap_fp8", "--engine analytic --dispatch-dtype fp8 --combine-dtype bf16");
  const ByPass sent = Column(fp8, "dispatch_sent_bytes");
  for (size_t i = 0; i < sent.forward.size(); ++i) EXPECT_EQ(sent.backward[i], sent.forward[i]) << "row " << i;
}

// With the roofline profile (one FFN per expert), the experts' backward is twice their
// forward (input and weight gradients), three times with recomputation; the backward's first
// compute is the forward's reduce (the weighted sum's gradient moves its bytes).
TEST(TrainingTest, BackwardComputeMirrorsTheForward) {
  for (const bool recompute : {false, true}) {
    const std::string dir = RunTraining(recompute ? "mirror_r" : "mirror",
                                std::string("--engine analytic --profile cpu-dev") + (recompute ? " --recompute on" : ""));
    const ByPass expert = Column(dir, "expert_s"), route = Column(dir, "route_s"), compute = Column(dir, "compute_s");
    ASSERT_EQ(expert.backward.size(), 2u * kGpus);
    for (size_t i = 0; i < expert.forward.size(); ++i) {
      EXPECT_GT(expert.forward[i], 0);
      // Within the CSV's 9 significant digits (the reduce as a difference of larger times).
      EXPECT_NEAR(expert.backward[i], (recompute ? 3 : 2) * expert.forward[i], 1e-8 * expert.forward[i]) << i;
      const double forward_reduce = compute.forward[i] - route.forward[i] - expert.forward[i];
      EXPECT_NEAR(route.backward[i], forward_reduce, 1e-8 * compute.forward[i]) << i;
    }
  }
}

// A training step is its forward, then its backward: steps.csv says both and their sum, on
// both engines alike (the backward is one more replay of flows; SimGrid against exact max-min).
TEST(TrainingTest, StepIsForwardThenBackwardOnBothEngines) {
  const std::string simgrid = RunTraining("sg", "--engine simgrid"), analytic = RunTraining("an", "--engine analytic --sharing max-min");
  for (const char* column : {"forward_s", "backward_s", "step_time_s", "backward_dispatch_s", "backward_combine_s"}) {
    const std::vector<double> a = CsvColumn(simgrid + "/steps.csv", column), b = CsvColumn(analytic + "/steps.csv", column);
    ASSERT_EQ(a.size(), 2u);
    for (size_t s = 0; s < a.size(); ++s) {
      EXPECT_GT(a[s], 0) << column;
      EXPECT_NEAR(a[s], b[s], 1e-3 * a[s]) << column << " step " << s;
    }
  }
  const std::vector<double> step = CsvColumn(simgrid + "/steps.csv", "step_time_s"),
                            forward = CsvColumn(simgrid + "/steps.csv", "forward_s"),
                            backward = CsvColumn(simgrid + "/steps.csv", "backward_s");
  for (size_t s = 0; s < step.size(); ++s) EXPECT_NEAR(step[s], forward[s] + backward[s], 1e-8 * step[s]);
  // The backward moves the forward's bytes and computes twice the experts' FLOPs: it is the
  // longer pass.
  EXPECT_GT(backward[0], forward[0]);
  const std::string summary = ReadFile(simgrid + "/summary.json");
  for (const char* key : {"\"mode\": \"training\"", "\"forward_s\"", "\"backward_s\"", "\"backward_phases_s\""})
    EXPECT_NE(summary.find(key), std::string::npos) << key;
}

// The forward beside the backward (one replay, two micro-batches) does the work of both
// passes: each GPU computes and sends what it computes and sends in the forward and the
// backward replayed one after the other; its compute stream runs them all, so no GPU ends
// before its compute.
TEST(TrainingTest, ForwardBesideBackwardDoesBothPassesWork) {
  for (const char* engine : {"analytic", "simgrid"}) {
    const std::string apart = RunTraining(std::string("apart_") + engine, std::string("--engine ") + engine);
    const std::string both =
        RunTraining(std::string("both_") + engine, std::string("--engine ") + engine + " --overlap forward-backward");
    ASSERT_EQ(CsvTextColumn(both + "/gpus.csv", "pass"), std::vector<std::string>(2 * kGpus, "forward+backward"));
    for (const char* column : {"compute_s", "dispatch_sent_bytes", "combine_sent_bytes", "dispatch_recv_bytes"}) {
      const ByPass split = Column(apart, column);
      const std::vector<double> together = CsvColumn(both + "/gpus.csv", column);
      for (size_t i = 0; i < together.size(); ++i) {
        const double sum = split.forward[i] + split.backward[i];
        EXPECT_NEAR(together[i], sum, 1e-8 * sum) << column << " row " << i;
      }
    }
    const std::vector<double> compute = CsvColumn(both + "/gpus.csv", "compute_s");
    const std::vector<double> end = CsvColumn(both + "/gpus.csv", "end_s");
    for (size_t i = 0; i < compute.size(); ++i) EXPECT_GE(end[i], compute[i] * (1 - 1e-8)) << i;
    const std::vector<double> forward_end = CsvColumn(both + "/steps.csv", "forward_s"),
                              backward_end = CsvColumn(both + "/steps.csv", "backward_s"),
                              step = CsvColumn(both + "/steps.csv", "step_time_s");
    for (size_t s = 0; s < step.size(); ++s) {
      EXPECT_LE(forward_end[s], step[s]);
      EXPECT_NEAR(std::max(forward_end[s], backward_end[s]), step[s], 1e-8 * step[s]);
    }
  }
}

TEST(TrainingTest, WritesTheSameFilesTwice) {
  for (const char* extra : {"--engine analytic", "--engine simgrid --overlap two-batch --recompute on",
                            "--engine analytic --overlap forward-backward"}) {
    const std::string a = RunTraining("same_a", extra), b = RunTraining("same_b", extra);
    for (const char* file : {"summary.json", "steps.csv", "gpus.csv", "experts.csv", "links.csv"}) {
      const std::string fa = ReadFile(a + "/" + file);
      EXPECT_FALSE(fa.empty()) << file;
      EXPECT_EQ(fa, ReadFile(b + "/" + file)) << file << ": " << extra;
    }
    // One row per step, per (step, GPU, pass), per (step, expert).
    EXPECT_EQ(epsim::testing::CountLines(ReadFile(a + "/steps.csv")), 1 + 2);
    const bool both = std::string(extra).find("forward-backward") != std::string::npos;  // one replay per step
    EXPECT_EQ(epsim::testing::CountLines(ReadFile(a + "/gpus.csv")), 1 + 2 * (both ? 1 : 2) * kGpus);
    EXPECT_EQ(epsim::testing::CountLines(ReadFile(a + "/experts.csv")), 1 + 2 * 32);
    const std::vector<std::string> link_pass = CsvTextColumn(a + "/links.csv", "pass");
    EXPECT_NE(std::find(link_pass.begin(), link_pass.end(), both ? "forward+backward" : "backward"), link_pass.end());
  }
}

TEST(TrainingTest, BundledTrainingScenarioRuns) {
  // scenarios/deepseek-v3-training-h800.yaml, shrunk in tokens and steps so the suite stays fast.
  const epsim::testing::CommandResult r = Epsim("simulate deepseek-v3-training-h800 --tokens-per-gpu 256 --steps 1");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("deepseek-v3-training-64xh800"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 training (forward + backward) steps"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# training: forward "), std::string::npos) << r.out;
}

}  // namespace
