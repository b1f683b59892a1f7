// epsim tests: `epsim sweep` end to end: the tidy CSV, resume, 2 MPI ranks, bad input, and
// each swept run against the same `epsim simulate` run on its own.
//
// Runs sim/epsim sweep on a tiny grid: 16 GPUs, 64 tokens, 2 steps, a few hundredths of a
// second per run.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testing/run_command.h"

namespace {

const char kBinary[] = "sim/epsim";

using CliRun = epsim::testing::CommandResult;
using epsim::testing::ReadFile;
using epsim::testing::WriteFile;

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

std::string Tmp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

// Runs `prefix sim/epsim sweep ARGS` and captures stdout and stderr.
CliRun Sweep(const std::string& args, const std::string& prefix = "") {
  return epsim::testing::RunCommand(prefix + kBinary + " sweep " + args);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// The fixed fields of the test grids: a tiny layer on 16 GPUs, 2 steps.
#define TINY_SET \
    "set:\n" \
    "  topology: dgx-h100\n" \
    "  nodes: 2\n" \
    "  workload.gpus: 16\n" \
    "  tokens_per_gpu: 64\n" \
    "  model.experts: 32\n" \
    "  --top-k: 4\n" \
    "  hidden: 1024\n" \
    "  expert_ffn: 512\n" \
    "  steps: 2\n"

// 2 routings x 3 capacity factors = 6 runs of 2 steps on 16 GPUs.
const char kSweep[] =
    "# a tiny grid for tests\n"
    "base: none\n"
    TINY_SET
    "grid:\n"
    "  workload.routing: [uniform, zipf:1.0]\n"
    "  strategy.capacity_factor: [1.0, 1.25, none]\n";

std::string WriteSweep(const std::string& name, const std::string& text) {
  const std::string path = Tmp(name);
  WriteFile(path, text);
  return path;
}

TEST(SweepCliTest, OneRowPerRunAndStep) {
  const std::string file = WriteSweep("tiny.yaml", kSweep);
  const std::string dir = Tmp("tidy");
  CliRun r = Sweep(file + " --out " + dir + " --jobs 2");
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("6 runs"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("6/6 runs"), std::string::npos) << r.err;  // the progress bar's last line

  const auto lines = Lines(ReadFile(dir + "/sweep.csv"));
  ASSERT_EQ(lines.size(), 1u + 6 * 2) << ReadFile(dir + "/sweep.csv");
  EXPECT_EQ(lines[0].rfind("run,routing,capacity_factor,step,step_time_s,critical_gpu,", 0), 0u)
      << lines[0];
  // Runs in grid order, steps in order, each run's folder kept.
  std::set<std::string> runs;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string run = lines[i].substr(0, lines[i].find(','));
    runs.insert(run);
    EXPECT_TRUE(Exists(dir + "/runs/" + run + "/gpus.csv")) << run;
    EXPECT_TRUE(Exists(dir + "/runs/" + run + "/experts.csv")) << run;
  }
  EXPECT_EQ(runs.size(), 6u);
  EXPECT_EQ(lines[1].rfind("routing=uniform_capacity_factor=1.0,uniform,1.0,0,", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("routing=uniform_capacity_factor=1.0,uniform,1.0,1,", 0), 0u) << lines[2];
  EXPECT_EQ(lines[12].rfind("routing=zipf-1.0_capacity_factor=none,zipf:1.0,none,1,", 0), 0u) << lines[12];
  // The rows are the runs' steps.csv rows.
  const auto steps = Lines(ReadFile(dir + "/runs/routing=zipf-1.0_capacity_factor=none/steps.csv"));
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(lines[12], "routing=zipf-1.0_capacity_factor=none,zipf:1.0,none," + steps[2]);
  EXPECT_EQ(ReadFile(dir + "/sweep.yaml"), kSweep);
}

TEST(SweepCliTest, ResumeSkipsCompleteRuns) {
  const std::string file = WriteSweep("resume.yaml", kSweep);
  const std::string dir = Tmp("resume");
  CliRun first = Sweep(file + " --out " + dir);
  ASSERT_EQ(first.exit_status, 0) << first.err;
  const std::string csv = ReadFile(dir + "/sweep.csv");

  // Everything present: nothing runs (the logs keep their first content).
  const std::string log = dir + "/runs/routing=uniform_capacity_factor=1.25/epsim.log";
  WriteFile(log, "kept\n");
  CliRun again = Sweep(file + " --out " + dir);
  ASSERT_EQ(again.exit_status, 0) << again.err;
  EXPECT_NE(again.out.find("6 of 6 runs complete (6 already done), 0 failed"), std::string::npos) << again.out;
  EXPECT_EQ(ReadFile(log), "kept\n");
  EXPECT_EQ(ReadFile(dir + "/sweep.csv"), csv);

  // An interrupted run (no summary.json) runs again, alone.
  std::remove((dir + "/runs/routing=uniform_capacity_factor=1.25/summary.json").c_str());
  WriteFile(dir + "/runs/routing=zipf-1.0_capacity_factor=1.0/epsim.log", "kept\n");
  CliRun resumed = Sweep(file + " --out " + dir);
  ASSERT_EQ(resumed.exit_status, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("(5 already done)"), std::string::npos) << resumed.out;
  EXPECT_NE(ReadFile(log), "kept\n");
  EXPECT_EQ(ReadFile(dir + "/runs/routing=zipf-1.0_capacity_factor=1.0/epsim.log"), "kept\n");
  EXPECT_EQ(ReadFile(dir + "/sweep.csv"), csv);  // deterministic for a seed

  // A run made by another epsim build runs again.
  WriteFile(dir + "/runs/routing=zipf-1.0_capacity_factor=1.0/sweep_build.txt", "0123456789abcdef");
  CliRun rebuilt = Sweep(file + " --out " + dir);
  ASSERT_EQ(rebuilt.exit_status, 0) << rebuilt.err;
  EXPECT_NE(rebuilt.out.find("(5 already done)"), std::string::npos) << rebuilt.out;
  EXPECT_NE(ReadFile(dir + "/runs/routing=zipf-1.0_capacity_factor=1.0/epsim.log"), "kept\n");

  // A run made with other arguments (the fixed fields changed) runs again.
  std::string changed = kSweep;
  changed.replace(changed.find("steps: 2"), 8, "steps: 1");
  CliRun other = Sweep(WriteSweep("resume2.yaml", changed) + " --out " + dir);
  ASSERT_EQ(other.exit_status, 0) << other.err;
  EXPECT_NE(other.out.find("(0 already done)"), std::string::npos) << other.out;
  EXPECT_EQ(Lines(ReadFile(dir + "/sweep.csv")).size(), 1u + 6);
}

TEST(SweepCliTest, TwoMpiRanksGiveTheSameCsv) {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "no mpirun (openmpi-bin)";
  const std::string file = WriteSweep("mpi.yaml", kSweep);
  CliRun one = Sweep(file + " --out " + Tmp("mpi1") + " --jobs 1");
  ASSERT_EQ(one.exit_status, 0) << one.err;
  const std::string mpirun =
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent= "
      "TMPDIR=" + ::testing::TempDir() + " mpirun -np 2 --oversubscribe ";
  CliRun two = Sweep(file + " --out " + Tmp("mpi2") + " --jobs 1", mpirun);
  ASSERT_EQ(two.exit_status, 0) << two.out << two.err;
  EXPECT_EQ(ReadFile(Tmp("mpi2") + "/sweep.csv"), ReadFile(Tmp("mpi1") + "/sweep.csv"));
  // Rank 1 took the odd runs: their folders exist, made by the same arguments.
  EXPECT_TRUE(Exists(Tmp("mpi2") + "/.sweep/rank-1.done"));
  EXPECT_EQ(Lines(ReadFile(Tmp("mpi2") + "/sweep.csv")).size(), 13u);
}

TEST(SweepCliTest, BadGridValueStopsBeforeAnyRun) {
  std::string bad = kSweep;
  bad.replace(bad.find("[uniform, zipf:1.0]"), 19, "[uniform, zipf:x]");
  const std::string dir = Tmp("bad_value");
  CliRun r = Sweep(WriteSweep("bad_value.yaml", bad) + " --out " + dir);
  EXPECT_EQ(r.exit_status, 2);
  ASSERT_EQ(Lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("bad_value.yaml: grid.workload.routing: 'zipf:x'"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(dir + "/runs"));
}

TEST(SweepCliTest, FailedRunIsReportedAndOthersKept) {
  // One run cannot write its summary.json (a non-empty folder is in the way): it fails
  // while running, the others complete, sweep.csv holds their rows and the exit status is 1.
  const std::string file = WriteSweep("fail.yaml", kSweep);
  const std::string dir = Tmp("fail");
  const std::string blocked = dir + "/runs/routing=zipf-1.0_capacity_factor=1.25";
  ASSERT_EQ(std::system(("mkdir -p '" + blocked + "/summary.json/x'").c_str()), 0);
  CliRun r = Sweep(file + " --out " + dir);
  EXPECT_EQ(r.exit_status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("run routing=zipf-1.0_capacity_factor=1.25 failed"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("5 of 6 runs complete"), std::string::npos) << r.out;
  EXPECT_TRUE(Exists(blocked + "/failed"));
  EXPECT_EQ(Lines(ReadFile(dir + "/sweep.csv")).size(), 1u + 5 * 2);
}

TEST(SweepCliTest, BadInputIsOneLine) {
  struct Case {
    std::string sweep, args, expect;
  };
  std::string too_many = kSweep;
  too_many.replace(too_many.find("workload.gpus: 16"), 17, "workload.gpus: 64");
  std::string bad_set = kSweep;
  bad_set.replace(bad_set.find("--top-k: 4"), 10, "--top-k: four");
  const std::vector<Case> cases = {
      {"", "no/such/sweep.yaml --out x", "no/such/sweep.yaml"},
      {"base: default\ngrid:\n  warp_speed: [1, 2]\n", "", "grid: 'warp_speed': unknown scenario field"},
      {"base: no_such_scenario\n", "", "base: 'no_such_scenario'"},
      {"base: default\ngrid: [1, 2]\n", "", "grid: expected a mapping"},
      {"base: default\ngrid:\n  gpus: {from: 8, to: 4, step: 1}\n", "", "grid.gpus.to: '4': must be >= from"},
      {too_many, "", "set.workload.gpus: '64': more GPUs than"},
      {bad_set, "", "set.--top-k: 'four': expected a whole number"},
      {"base: default\ngrid: {\n", "", "bad_input.yaml"},
      {"base: default\n", "--jobs 0", "--jobs: '0'"},
      {"base: default\n", "", "--out: missing"},
  };
  for (const Case& c : cases) {
    std::string args = c.args;
    if (!c.sweep.empty()) {
      const std::string file = WriteSweep("bad_input.yaml", c.sweep);
      args = file + (c.expect == "--out: missing" ? std::string() : " --out " + Tmp("bad_out")) +
             (c.args.empty() ? "" : " " + c.args);
    }
    CliRun r = Sweep(args);
    EXPECT_EQ(r.exit_status, 2) << args << "\n" << r.err;
    EXPECT_EQ(Lines(r.err).size(), 1u) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("epsim sweep: error: ", 0), 0u) << r.err;
  }
}

// 2 routings x 2 (capacity factor, overlap) pairs = 4 runs on the analytic engine; the
// pairs reach drops (1.25) and two-batch overlap (dropless).
const char kSweptVsAloneSweep[] =
    "base: none\n"
    TINY_SET
    "  engine: analytic\n"
    "grid:\n"
    "  workload.routing: [uniform, zipf:1.0]\n"
    "  \"strategy.capacity_factor, strategy.overlap\": [[1.25, none], [none, two-batch]]\n";

// Every occurrence of `from` in `text` replaced by `to`.
std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// Each run of a sweep (a forked child calling simulate) leaves the bytes that the same
// `epsim simulate` command leaves when run on its own: sweep.csv is made of them, and every
// file of every run matches (the log differs only in the results folder it names).
TEST(SweepCliTest, SweptRunsWriteWhatSimulateWrites) {
  const std::string file = WriteSweep("swept_vs_alone.yaml", kSweptVsAloneSweep);
  const std::string swept = Tmp("swept"), alone = Tmp("alone");
  CliRun f = Sweep(file + " --out " + swept + " --jobs 2");
  ASSERT_TRUE(f.exited && f.exit_status == 0) << f.Describe();

  const std::string csv = ReadFile(swept + "/sweep.csv");
  const auto lines = Lines(csv);
  ASSERT_EQ(lines.size(), 1u + 4 * 2) << csv;
  std::set<std::string> runs;
  for (size_t i = 1; i < lines.size(); ++i) runs.insert(lines[i].substr(0, lines[i].find(',')));
  ASSERT_EQ(runs.size(), 4u) << csv;
  EXPECT_EQ(runs.count("routing=zipf-1.0_capacity_factor=none_overlap=two-batch"), 1u) << csv;
  for (const std::string& run : runs) {
    // sweep_args.txt: "base BASE" then one "--flag value" per line.
    std::string command = "sim/epsim simulate";
    for (const std::string& line : Lines(ReadFile(swept + "/runs/" + run + "/sweep_args.txt")))
      command += " " + (line.rfind("base ", 0) == 0 ? line.substr(5) : line);
    CliRun r = epsim::testing::RunCommand(command + " --out " + alone + "/" + run);
    ASSERT_TRUE(r.exited && r.exit_status == 0) << command << "\n" << r.Describe();
    for (const char* name : {"summary.json", "steps.csv", "gpus.csv", "experts.csv", "links.csv"}) {
      const std::string want = ReadFile(alone + "/" + run + "/" + name);
      EXPECT_FALSE(want.empty()) << run << "/" << name;
      EXPECT_EQ(ReadFile(swept + "/runs/" + run + "/" + name), want) << run << "/" << name;
    }
    const std::string log = ReadFile(swept + "/runs/" + run + "/epsim.log");
    EXPECT_NE(log.find("# step time p50 "), std::string::npos) << run << "/epsim.log:\n" << log;
    EXPECT_EQ(ReplaceAll(log, swept + "/runs/", alone + "/"), r.err + r.out) << run << "/epsim.log";
  }
}

TEST(SweepCliTest, DryRunListsRuns) {
  const std::string file = WriteSweep("dry.yaml", kSweep);
  CliRun r = Sweep(file + " --dry-run");
  ASSERT_EQ(r.exit_status, 0) << r.err;
  const auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u + 6) << r.out;
  EXPECT_EQ(lines[2].rfind("routing=uniform_capacity_factor=1.0: --topology dgx-h100 --nodes 2 ", 0), 0u)
      << lines[2];
  EXPECT_NE(lines[7].find("--routing zipf:1.0 --capacity-factor none"), std::string::npos) << lines[7];
}

}  // namespace
