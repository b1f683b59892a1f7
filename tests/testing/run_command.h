// epsim tests: running a command line from a test (the epsim, sweep and calibrate binaries
// from their runfiles) and reading what it left: exit status or signal, stdout, stderr.
//
//   using epsim::testing::RunCommand;
//   CommandResult r = RunCommand("sim/epsim --steps 1");
//   EXPECT_EQ(r.exit_status, 0) << r.Describe();
//   r = RunCommand("sim/epsim simulate big.yaml", CommandOptions{30, "EPSIM_X=1"});  // 30 s at most
#ifndef EPSIM_TESTS_TESTING_RUN_COMMAND_H_
#define EPSIM_TESTS_TESTING_RUN_COMMAND_H_

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace epsim::testing {

// How one run of a command ended, and what it printed.
struct CommandResult {
  bool exited = false;     // ended through exit(); false: a signal (crash) or the time limit
  int exit_status = -1;    // when exited; -1 otherwise
  bool timed_out = false;  // killed after CommandOptions::limit_s
  int signal = 0;          // the signal that ended it, when not exited
  std::string out, err;

  // For failure messages: how it ended, stderr, the start of stdout.
  std::string Describe() const {
    std::ostringstream text;
    if (timed_out) text << "timed out";
    else if (!exited) text << "killed by signal " << signal;
    else text << "exit " << exit_status;
    text << "\n--- stderr ---\n" << err << "--- stdout (first 2000 chars) ---\n" << out.substr(0, 2000);
    return text.str();
  }
};

struct CommandOptions {
  int limit_s = 0;  // > 0: SIGKILL after this many seconds (reported as timed_out)
  std::string env;  // "NAME=VALUE ..." (shell text) added to the command's environment
};

// The whole content of a file ("" when it cannot be read).
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

// Lines of text, a last line without '\n' included.
inline int CountLines(const std::string& text) {
  int lines = 0;
  for (char c : text) lines += c == '\n';
  if (!text.empty() && text.back() != '\n') ++lines;
  return lines;
}

// The test's temporary folder (Bazel's TEST_TMPDIR, else /tmp).
inline std::string TestTmpDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

// Runs `command` (shell text, from the current folder: the runfiles root under Bazel) with
// stdin from /dev/null and stdout and stderr captured through temporary files.
inline CommandResult RunCommand(const std::string& command, const CommandOptions& options = {}) {
  // Unique capture files, so that tests of one binary may run side by side.
  std::string out_path = TestTmpDir() + "/run_command.out.XXXXXX";
  std::string err_path = TestTmpDir() + "/run_command.err.XXXXXX";
  const int out_fd = mkstemp(out_path.data()), err_fd = mkstemp(err_path.data());
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("RunCommand: cannot create files in " + TestTmpDir());
  close(out_fd);
  close(err_fd);
  std::string line = command;
  if (options.limit_s > 0) line = "timeout -s KILL " + std::to_string(options.limit_s) + " " + line;
  if (!options.env.empty()) line = "env " + options.env + " " + line;
  line += " >'" + out_path + "' 2>'" + err_path + "' </dev/null";
  const int raw = std::system(line.c_str());
  CommandResult r;
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  if (raw == -1) throw std::runtime_error("RunCommand: cannot start a shell for: " + command);
  if (!WIFEXITED(raw)) {  // the shell itself was killed (it had exec'd the command)
    r.signal = WIFSIGNALED(raw) ? WTERMSIG(raw) : -1;
    r.timed_out = options.limit_s > 0 && r.signal == SIGKILL;
    return r;
  }
  const int status = WEXITSTATUS(raw);
  // A shell that outlived its child reports a child killed by signal S as 128 + S, and
  // `timeout -s KILL` as 137 (so an exit status above 128 reads as a signal here).
  if (status > 128) {
    r.signal = status - 128;
    r.timed_out = options.limit_s > 0 && r.signal == SIGKILL;
  } else {
    r.exited = true;
    r.exit_status = status;
  }
  return r;
}

}  // namespace epsim::testing

#endif  // EPSIM_TESTS_TESTING_RUN_COMMAND_H_
