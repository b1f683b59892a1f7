// epsim tests: a stand-in for the epsim binary until sim/main.cc dispatches `sweep`.
//
//   tests/sweep/sweep_dev sweep SWEEP.yaml --out DIR    # RunSweepCommand
//   tests/sweep/sweep_dev simulate ...                  # forwarded to sim/epsim
//
// The sweep runs its children as /proc/self/exe, i.e. this binary, which hands every
// command other than `sweep` to the real sim/epsim found beside it (runfiles or bazel-bin).
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sim/sweep.h"

namespace {

std::string FindEpsim() {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("TEST_SRCDIR")) candidates.push_back(std::string(dir) + "/epsim/sim/epsim");
  if (const char* dir = std::getenv("RUNFILES_DIR")) candidates.push_back(std::string(dir) + "/epsim/sim/epsim");
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    const std::string self = exe;
    candidates.push_back(self + ".runfiles/epsim/sim/epsim");
    const std::string dir = self.substr(0, self.rfind('/'));  // .../bin/tests/sweep
    candidates.push_back(dir + "/../../sim/epsim");
  }
  for (const auto& c : candidates)
    if (access(c.c_str(), X_OK) == 0) return c;
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "sweep") == 0) return epsim::RunSweepCommand(argc, argv);
  const std::string epsim = FindEpsim();
  if (epsim.empty()) {
    std::fprintf(stderr, "sweep_dev: cannot find sim/epsim\n");
    return 1;
  }
  argv[0] = const_cast<char*>(epsim.c_str());
  execv(epsim.c_str(), argv);
  std::perror("sweep_dev: execv");
  return 1;
}
