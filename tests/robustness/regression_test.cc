// epsim robustness tests: every input that fuzzing found crashing (tools/fuzz/build_and_run.sh
// copies them to tests/robustness/regressions/<target>/) goes through the same loader again
// and must now be accepted or refused with a ConfigError (std::invalid_argument for the
// routing-trace loader), nothing else; so must the fuzzers' seeds (tests/fuzz/corpus/).
//
//   bazel test //tests/robustness:regression_test
#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "tests/robustness/epsim_runner.h"
#include "tests/fuzz/fuzz_targets.h"

namespace {

constexpr char kRoot[] = "tests/robustness/regressions";

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name[0] != '.' && name != "README.md") names.push_back(name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

constexpr const char* kTargets[] = {"topology", "scenario", "sweep", "profile", "routing_trace", "nccl_tests"};

// Runs every file of `dir` through the `kind` target, which must accept or refuse it
// cleanly; returns how many files there were.
int ReplayFolder(const char* kind, const std::string& dir) {
  int replayed = 0;
  for (const std::string& name : Files(dir)) {
    const std::string path = dir + "/" + name;
    SCOPED_TRACE(path);
    try {
      EXPECT_TRUE(epsim_fuzz::RunInput(kind, epsim_test::ReadFile(path)));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "escaped the loader: " << e.what();
    }
    ++replayed;
  }
  return replayed;
}

TEST(RegressionTest, EveryFoundInputIsAcceptedOrRefusedCleanly) {
  int replayed = 0;
  for (const char* kind : kTargets) replayed += ReplayFolder(kind, std::string(kRoot) + "/" + kind);
  // The inputs found so far (and kept on purpose) are all here.
  EXPECT_GE(replayed, 2);
}

// The seeds each fuzzer starts from (tests/fuzz/corpus/<target>/) go through the same
// targets cleanly, so a target that no longer builds or that throws on ordinary input is
// caught here, not only when someone runs the fuzzers.
TEST(RegressionTest, SeedInputsGoThroughTheTargetsCleanly) {
  int replayed = 0;
  for (const char* kind : kTargets) {
    const std::string dir = std::string("tests/fuzz/corpus/") + kind;
    const int seeds = ReplayFolder(kind, dir);
    EXPECT_GT(seeds, 0) << dir;
    replayed += seeds;
  }
  EXPECT_GE(replayed, 5 + 8);  // one seed or more per YAML target, eight routing traces
}

}  // namespace
