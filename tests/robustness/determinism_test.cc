// epsim robustness tests: a simulation is deterministic for a seed. The bundled default
// scenario, run twice with the analytic engine into the same folder name, gives
// byte-identical stdout, summary.json, steps.csv, gpus.csv, experts.csv and links.csv.
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

TEST(DeterminismTest, DefaultScenarioTwiceGivesIdenticalBytes) {
  const std::string dir = FreshDir("determinism");
  // Both runs write to DIR/out (stdout names the folder), which is then moved aside.
  const std::string out = dir + "/out";
  std::string stdout_of[2];
  for (int run = 0; run < 2; ++run) {
    const EpsimResult r =
        epsim_test::RunEpsim("simulate default --engine analytic --out " + out, 300);
    ASSERT_TRUE(r.exited && r.exit_status == 0) << r.Describe();
    EXPECT_EQ(r.err, "");
    stdout_of[run] = r.out;
    const std::string kept = dir + "/run" + std::to_string(run);
    ASSERT_EQ(std::rename(out.c_str(), kept.c_str()), 0) << kept;
  }
  EXPECT_NE(stdout_of[0].find("# step time p50"), std::string::npos) << stdout_of[0];
  EXPECT_EQ(stdout_of[0], stdout_of[1]) << "stdout differs";
  for (const char* name : {"summary.json", "steps.csv", "gpus.csv", "experts.csv", "links.csv"}) {
    const std::string a = ReadFile(dir + "/run0/" + name), b = ReadFile(dir + "/run1/" + name);
    EXPECT_FALSE(a.empty()) << name;
    EXPECT_TRUE(a == b) << name << " differs between two runs of the same seed ("
                        << a.size() << " vs " << b.size() << " bytes)";
  }
}

}  // namespace
