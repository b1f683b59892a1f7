// epsim robustness tests: running the real `sim/epsim` binary from a test and reading what
// it left behind (exit status or signal, stdout, stderr, files).
//
//   EpsimResult r = RunEpsim("simulate scen.yaml --engine analytic", dir, 30);
//   EXPECT_TRUE(r.exited) << r.Describe();
#ifndef EPSIM_TESTS_ROBUSTNESS_EPSIM_RUNNER_H_
#define EPSIM_TESTS_ROBUSTNESS_EPSIM_RUNNER_H_

#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace epsim_test {

// How one run of the binary ended.
struct EpsimResult {
  bool exited = false;     // ended through exit(); false: a signal (crash) or the time limit
  int exit_status = -1;    // when exited
  bool timed_out = false;  // killed by `timeout` after the limit
  int signal = 0;          // the signal that ended it, when not exited
  std::string out, err;

  std::string Describe() const {
    std::ostringstream text;
    if (timed_out) text << "timed out";
    else if (!exited) text << "killed by signal " << signal;
    else text << "exit " << exit_status;
    text << "\n--- stderr ---\n" << err << "--- stdout (first 2000 chars) ---\n"
         << out.substr(0, 2000);
    return text.str();
  }
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

inline int CountLines(const std::string& text) {
  int lines = 0;
  for (char c : text) lines += c == '\n';
  if (!text.empty() && text.back() != '\n') ++lines;
  return lines;
}

// A fresh, empty folder under the test's temporary directory.
inline std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name;
  std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str());
  return dir;
}

// Runs `sim/epsim ARGS` (ARGS is shell text) from the runfiles root, under `timeout`
// (SIGKILL after `limit_s`), with stdout and stderr captured through files in `scratch_dir`
// and `env` ("NAME=VALUE ...", shell text) added to its environment.
inline EpsimResult RunEpsim(const std::string& args, const std::string& scratch_dir,
                            int limit_s, const std::string& env = "") {
  const std::string out = scratch_dir + "/epsim.stdout", err = scratch_dir + "/epsim.stderr";
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + "timeout -s KILL " + std::to_string(limit_s) + " sim/epsim " + args +
                          " >'" + out + "' 2>'" + err + "' </dev/null";
  const int raw = std::system(cmd.c_str());
  EpsimResult r;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  if (!WIFEXITED(raw)) {
    r.signal = WIFSIGNALED(raw) ? WTERMSIG(raw) : -1;
    return r;
  }
  const int status = WEXITSTATUS(raw);
  // The shell reports a child killed by signal S as 128 + S; `timeout -s KILL` as 137.
  if (status == 137) {
    r.timed_out = true;
    r.signal = 9;
  } else if (status > 128) {
    r.signal = status - 128;
  } else {
    r.exited = true;
    r.exit_status = status;
  }
  return r;
}

}  // namespace epsim_test

#endif  // EPSIM_TESTS_ROBUSTNESS_EPSIM_RUNNER_H_
