// epsim robustness tests: result files are complete or absent, even when the writer is
// killed (SIGKILL) mid-way. A notebook that finds summary.json, steps.csv, gpus.csv or
// experts.csv under its final name must be able to trust it; only NAME.tmp.PID leftovers
// may be partial.
//
//   bazel test //tests/robustness:atomic_results_test
#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "tests/robustness/epsim_runner.h"

namespace {

using epsim_test::FreshDir;
using epsim_test::ReadFile;

constexpr int kGpus = 64;
constexpr int kSteps = 5;
constexpr int kExperts = 256;  // the default scenario's
const char kResultFiles[][16] = {"summary.json", "steps.csv", "gpus.csv", "experts.csv", "links.csv"};

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  return names;
}

bool IsTemporary(const std::string& name) { return name.find(".tmp.") != std::string::npos; }

int CountChar(const std::string& text, char c) {
  int n = 0;
  for (char x : text) n += x == c;
  return n;
}

// "" when `content` is a complete result file of this run, else what is wrong with it.
std::string Incomplete(const std::string& name, const std::string& content) {
  if (content.empty()) return "empty";
  if (content.back() != '\n') return "does not end with a line break";
  if (name == "summary.json") {
    // Balanced braces and brackets outside strings, one top-level object.
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < content.size(); ++i) {
      const char c = content[i];
      if (in_string) {
        if (c == '\\') ++i;
        else if (c == '"') in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth < 0) return "unbalanced JSON";
      }
    }
    if (depth != 0 || in_string || content.front() != '{') return "truncated JSON";
    return "";
  }
  // CSV: a header and rows with as many fields; at least one row per (entity, step).
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end = content.find('\n'); end != std::string::npos; end = content.find('\n', start)) {
    lines.push_back(content.substr(start, end - start));
    start = end + 1;
  }
  const int fields = CountChar(lines[0], ',');
  for (size_t i = 1; i < lines.size(); ++i)
    if (CountChar(lines[i], ',') != fields) return "row " + std::to_string(i) + " has a different field count";
  const size_t rows = lines.size() - 1;
  const size_t want = name == "steps.csv" ? kSteps
                      : name == "gpus.csv" ? static_cast<size_t>(kGpus) * kSteps
                                           : static_cast<size_t>(kExperts) * kSteps;
  if (rows < want) return std::to_string(rows) + " rows, expected at least " + std::to_string(want);
  return "";
}

// Every file under `dir` with a final name is complete; returns the problems.
std::vector<std::string> CheckNoPartialFiles(const std::string& dir) {
  std::vector<std::string> problems;
  for (const std::string& name : ListDir(dir)) {
    if (IsTemporary(name)) continue;
    bool known = false;
    for (const char* result : kResultFiles) known |= name == result;
    if (!known) {
      problems.push_back(name + ": unexpected file");
      continue;
    }
    const std::string why = Incomplete(name, ReadFile(dir + "/" + name));
    if (!why.empty()) problems.push_back(name + ": " + why);
  }
  return problems;
}

// Starts `sim/epsim ARGS...` with stdout and stderr to /dev/null; returns its pid.
pid_t StartEpsim(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    static char kBinary[] = "sim/epsim";
    argv.push_back(kBinary);
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execv(kBinary, argv.data());
    _exit(127);
  }
  return pid;
}

// 64 GPUs, 4096 tokens each, 5 steps: several seconds with SimGrid, about one with the
// analytic engine (same four result files).
std::vector<std::string> RunArgs(const std::string& engine, const std::string& out_dir) {
  return {"simulate", "default", "--engine", engine, "--gpus", std::to_string(kGpus),
          "--nodes", "8", "--tokens-per-gpu", "4096", "--steps", std::to_string(kSteps),
          "--out", out_dir};
}

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

// Kills the run at several moments: a SimGrid run mid-simulation after a fixed delay, and
// (analytic engine, to keep the test short) runs as soon as their result folder appears,
// while they write the four files, each fsync'ed before its rename.
TEST(AtomicResultsTest, KilledRunLeavesNoPartialFileUnderAFinalName) {
  const std::string base = FreshDir("atomic_kill");
  // Delays in ms; -1: poll the folder and kill as soon as it exists.
  const std::vector<int> moments = {1500, -1, -1, -1};
  int caught_writing = 0;
  for (size_t i = 0; i < moments.size(); ++i) {
    const std::string out_dir = base + "/run" + std::to_string(i);
    const pid_t pid = StartEpsim(RunArgs(moments[i] >= 0 ? "simgrid" : "analytic", out_dir));
    ASSERT_GT(pid, 0);
    const auto started = std::chrono::steady_clock::now();
    bool ended = false;
    int status = 0;
    while (true) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        ended = true;
        break;
      }
      const double elapsed_ms = std::chrono::duration<double, std::milli>(
                                    std::chrono::steady_clock::now() - started).count();
      if (moments[i] >= 0 ? elapsed_ms >= moments[i] : Exists(out_dir)) break;
      if (elapsed_ms > 120'000) break;  // a hang: killed below, reported by the checks
      const timespec pause = {0, 100'000};  // 0.1 ms
      nanosleep(&pause, nullptr);
    }
    if (!ended) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    if (moments[i] < 0 && !ended && Exists(out_dir)) ++caught_writing;
    const std::vector<std::string> problems = CheckNoPartialFiles(out_dir);
    std::string listing;
    for (const std::string& name : ListDir(out_dir)) listing += " " + name;
    EXPECT_TRUE(problems.empty()) << "kill " << i << ": " << problems.front() << "\nfolder:" << listing;
    // Mid-simulation nothing has been written yet.
    if (moments[i] >= 0 && !ended) {
      for (const char* result : kResultFiles) EXPECT_FALSE(Exists(out_dir + "/" + result)) << result;
    }
  }
  EXPECT_GT(caught_writing, 0) << "never killed the run while it wrote its results";
}

TEST(AtomicResultsTest, CompletedRunWritesFourCompleteFiles) {
  const std::string out_dir = FreshDir("atomic_complete") + "/out";
  const pid_t pid = StartEpsim(RunArgs("simgrid", out_dir));
  ASSERT_GT(pid, 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  for (const char* result : kResultFiles) {
    const std::string content = ReadFile(out_dir + "/" + result);
    EXPECT_EQ(Incomplete(result, content), "") << result;
  }
  for (const std::string& name : ListDir(out_dir)) EXPECT_FALSE(IsTemporary(name)) << name;
}

// The primitive itself, killed while it writes 256 MB: the final name never appears.
TEST(AtomicResultsTest, WriteFileAtomicallyKilledMidWriteLeavesOnlyTheTemporary) {
  const std::string dir = FreshDir("atomic_primitive");
  const std::string path = dir + "/big.csv";
  epsim::WriteFileAtomically(path, "old,complete\n");
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string content(256u << 20, 'x');
    epsim::WriteFileAtomically(path, content);
    _exit(0);
  }
  // Kill once the temporary has started to grow.
  const std::string tmp = path + ".tmp." + std::to_string(pid);
  for (int i = 0; i < 100'000; ++i) {
    struct stat info;
    if (stat(tmp.c_str(), &info) == 0 && info.st_size > 0) break;
    const timespec pause = {0, 100'000};
    nanosleep(&pause, nullptr);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) GTEST_SKIP() << "the write finished before the kill";
  EXPECT_EQ(ReadFile(path), "old,complete\n");
}

}  // namespace
