// epsim robustness tests: running the real `sim/epsim` binary from a test (through
// tests/testing/run_command.h) and fresh folders for what it leaves behind.
//
//   EpsimResult r = RunEpsim("simulate scen.yaml --engine analytic", 30);
//   EXPECT_TRUE(r.exited) << r.Describe();
#ifndef EPSIM_TESTS_ROBUSTNESS_EPSIM_RUNNER_H_
#define EPSIM_TESTS_ROBUSTNESS_EPSIM_RUNNER_H_

#include <cstdlib>
#include <string>

#include "tests/testing/run_command.h"

namespace epsim_test {

using EpsimResult = epsim::testing::CommandResult;
using epsim::testing::CountLines;
using epsim::testing::ReadFile;
using epsim::testing::WriteFile;

// A fresh, empty folder under the test's temporary directory.
inline std::string FreshDir(const std::string& name) {
  const std::string dir = epsim::testing::TestTmpDir() + "/" + name;
  std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str());
  return dir;
}

// Runs `sim/epsim ARGS` (ARGS is shell text) from the runfiles root, killed after `limit_s`,
// with `env` ("NAME=VALUE ...", shell text) added to its environment.
inline EpsimResult RunEpsim(const std::string& args, int limit_s, const std::string& env = "") {
  return epsim::testing::RunCommand("sim/epsim " + args, epsim::testing::CommandOptions{limit_s, env});
}

}  // namespace epsim_test

#endif  // EPSIM_TESTS_ROBUSTNESS_EPSIM_RUNNER_H_
