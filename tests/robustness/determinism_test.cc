// epsim robustness tests: a simulation is deterministic for a seed. The bundled default
// scenario, run twice with the analytic engine into the same folder name, gives
// byte-identical stdout, summary.json, steps.csv, gpus.csv, experts.csv and links.csv; so
// does a training step of a stack with every layer its own routing, latent attention and
// rebalances overlapped with the steps, on both engines.
//
//   bazel test //tests/robustness:determinism_test
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tests/robustness/epsim_runner.h"

namespace {

using epsim_test::EpsimResult;
using epsim_test::FreshDir;
using epsim_test::ReadFile;

// Runs `args` twice into the same folder name; every output must be byte-identical.
void ExpectIdenticalRuns(const std::string& name, const std::string& args) {
  const std::string dir = FreshDir(name);
  // Both runs write to DIR/out (stdout names the folder), which is then moved aside.
  const std::string out = dir + "/out";
  std::string stdout_of[2];
  for (int run = 0; run < 2; ++run) {
    const EpsimResult r = epsim_test::RunEpsim(args + " --out " + out, 300);
    ASSERT_TRUE(r.exited && r.exit_status == 0) << r.Describe();
    // epsim warns of nothing (under ASan, SimGrid's context switches make the sanitizer
    // note on stderr that it ignores a stack switch: not epsim's).
    EXPECT_EQ(r.err.find("epsim"), std::string::npos) << r.err;
    stdout_of[run] = r.out;
    const std::string kept = dir + "/run" + std::to_string(run);
    ASSERT_EQ(std::rename(out.c_str(), kept.c_str()), 0) << kept;
  }
  EXPECT_NE(stdout_of[0].find("# step time p50"), std::string::npos) << stdout_of[0];
  EXPECT_EQ(stdout_of[0], stdout_of[1]) << "stdout differs";
  for (const char* file : {"summary.json", "steps.csv", "gpus.csv", "experts.csv", "links.csv"}) {
    const std::string a = ReadFile(dir + "/run0/" + file), b = ReadFile(dir + "/run1/" + file);
    EXPECT_FALSE(a.empty()) << file;
    EXPECT_TRUE(a == b) << file << " differs between two runs of the same seed (" << a.size() << " vs " << b.size()
                        << " bytes)";
  }
}

TEST(DeterminismTest, DefaultScenarioTwiceGivesIdenticalBytes) {
  ExpectIdenticalRuns("determinism", "simulate default --engine analytic");
}

TEST(DeterminismTest, TrainingStackWithOverlappedRebalancesTwiceGivesIdenticalBytes) {
  const std::string args =
      "simulate default --gpus 16 --nodes 2 --tokens-per-gpu 256 --experts 32 --top-k 4 --hidden 1024 "
      "--expert-ffn 512 --steps 3 --layers 3 --layer-routing 'zipf:1;uniform;hot:0.1' --mode training --heads 16 "
      "--head-dim 64 --kv-lora-rank 128 --q-lora-rank 256 --rope-head-dim 32 --sequence-length 512 --placement eplb "
      "--redundant-experts 16 --rebalance-interval 1 --rebalance-cost overlapped";
  ExpectIdenticalRuns("determinism_training_sg", args + " --engine simgrid");
  ExpectIdenticalRuns("determinism_training_an", args + " --engine analytic --overlap two-batch");
}

}  // namespace
