// epsim calibration tests: `epsim-calibrate --import` end to end. nccl-tests outputs of a
// made-up box (8 GPUs; an NCCL call costs 20 us + 1 us per peer + bytes sent / 300 GB/s)
// are imported into a copy of a bundled profile; the fit must give back the box's three
// terms, and the simulator must then run the nccl model and NVLink with them.
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "calibrate/profile/profile.h"
#include "tests/testing/run_command.h"

namespace epsim {
namespace {

using testing::CommandResult;
using testing::CountLines;
using testing::ReadFile;
using testing::RunCommand;
using testing::TestTmpDir;
using testing::WriteFile;

constexpr int kRanks = 8;
constexpr double kFixedS = 20e-6, kPerPeerS = 1e-6, kBps = 300e9;

// nccl-tests' format (calibrate/nccl_tests.h): the devices block, the column header, one row
// per size with the out-of-place time the made-up box takes. alltoall_perf: a rank sends
// size / n to each of the n - 1 others; sendrecv_perf: size to one peer.
std::string NcclTestsOutput(bool alltoall) {
  std::string out = "# nThread 1 nGpus 8 minBytes 1024 maxBytes 1073741824 step: 4(factor) warmup iters: 5 iters: 20\n"
                    "#\n# Using devices\n";
  char line[256];
  for (int r = 0; r < kRanks; ++r) {
    std::snprintf(line, sizeof(line), "#  Rank %2d Group  0 Pid  4242 on      box device %2d [0x%02x] NVIDIA H200\n", r,
                  r, 16 * r + 3);
    out += line;
  }
  out += "#\n#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   "
         "busbw #wrong\n";
  for (double size = 8192; size <= 1073741824; size *= 4) {
    const int peers = alltoall ? kRanks - 1 : 1;
    const double sent = alltoall ? size * (kRanks - 1) / kRanks : size;
    const double time_us = (kFixedS + peers * kPerPeerS + sent / kBps) * 1e6;
    const double algbw = size / time_us / 1e3;
    std::snprintf(line, sizeof(line), "%12.0f %13.0f %9s %7s %7s %8.2f %7.2f %7.2f %6s %8.2f %7.2f %7.2f %6s\n", size,
                  size / 4 / (alltoall ? kRanks : 1), "float", alltoall ? "none" : "sum", "-1", time_us, algbw,
                  sent / time_us / 1e3, "0", time_us, algbw, sent / time_us / 1e3, "N/A");
    out += line;
  }
  return out;
}

TEST(ImportTest, FitsTheBoxAndTheSimulatorRunsOnIt) {
  const std::string dir = TestTmpDir();
  WriteFile(dir + "/alltoall_perf.txt", NcclTestsOutput(true));
  WriteFile(dir + "/sendrecv_perf.txt", NcclTestsOutput(false));
  const std::string box = dir + "/box.yaml";
  const CommandResult r = RunCommand("calibrate/epsim-calibrate --import " + dir + "/alltoall_perf.txt --import " + dir +
                                     "/sendrecv_perf.txt --base calibrate/profiles/h200.yaml --out " + box);
  ASSERT_TRUE(r.exited && r.exit_status == 0) << r.Describe();
  EXPECT_NE(r.out.find("alltoall_perf on 8 GPUs (NVIDIA H200), 9 sizes"), std::string::npos) << r.out;

  const Profile p = LoadProfile(box);
  EXPECT_EQ(p.name, "box");
  ASSERT_TRUE(p.a2a.present);
  EXPECT_EQ(p.a2a.backend, "nccl");
  EXPECT_EQ(p.a2a.num_ranks, kRanks);
  EXPECT_EQ(p.a2a.table.size(), 18u);
  // The times are printed to 0.01 us: the terms come back to about that.
  EXPECT_NEAR(p.a2a.fixed_s, kFixedS, 0.05e-6);
  EXPECT_NEAR(p.a2a.per_message_s, kPerPeerS, 0.02e-6);
  EXPECT_NEAR(p.a2a.bandwidth_Bps, kBps, 1e-3 * kBps);
  EXPECT_LT(p.a2a.heldout_error, 1e-3);
  EXPECT_NE(p.a2a.source.find("nccl-tests: alltoall_perf"), std::string::npos) << p.a2a.source;
  // Imported again onto the imported profile: the new source replaces the old one.
  const std::string again = dir + "/again.yaml";
  const CommandResult r2 = RunCommand("calibrate/epsim-calibrate --import " + dir + "/alltoall_perf.txt --base " + box +
                                      " --out " + again);
  ASSERT_TRUE(r2.exited && r2.exit_status == 0) << r2.Describe();
  EXPECT_EQ(LoadProfile(again).a2a.table.size(), 9u);
  // The base profile's operations are kept as they were.
  const Profile base = LoadProfile("calibrate/profiles/h200.yaml");
  EXPECT_EQ(p.Op("expert").flop_rate_Fps, base.Op("expert").flop_rate_Fps);

  // The simulator: NVLink at the measured 300 GB/s, nccl at the fitted terms.
  const CommandResult sim = RunCommand("sim/epsim --profile " + box +
                                       " --topology dgx-h200 --gpus 8 --nodes 1 --steps 1 --engine analytic --out " +
                                       dir + "/run");
  ASSERT_TRUE(sim.exited && sim.exit_status == 0) << sim.Describe();
  EXPECT_NE(sim.out.find("NVLink 300 GB/s per direction (450 x 0.667)"), std::string::npos) << sim.out;
  EXPECT_NE(sim.out.find("# all-to-all: nccl: fixed 19 us per call + 1 us per message, no SM budget; measured on "
                         "NVIDIA H200"),
            std::string::npos)
      << sim.out;

  // fabric-check replays each imported case: with the profile, the measurement comes back
  // (the fixed cost, a whole call through the switch, is taken less the latency the replay
  // adds to each flow).
  const CommandResult check = RunCommand("sim/epsim fabric-check --profile " + box + " --topology dgx-h200");
  ASSERT_TRUE(check.exited && check.exit_status == 0) << check.Describe();
  int rows = 0;
  size_t at = 0;
  for (size_t end; (end = check.out.find('\n', at)) != std::string::npos; at = end + 1) {
    const std::string line = check.out.substr(at, end - at);
    double bytes, skew, peers, sent_mb, measured_us, with_profile_us;
    if (std::sscanf(line.c_str(), " %lf %lf %lf %lf %lf %lf", &bytes, &skew, &peers, &sent_mb, &measured_us,
                    &with_profile_us) != 6)
      continue;
    ++rows;
    EXPECT_NEAR(with_profile_us, measured_us, 0.1 + 1e-3 * measured_us) << line;
  }
  EXPECT_EQ(rows, 18) << check.out;
}

TEST(ImportTest, RefusesRunsOfDifferentBoxes) {
  const std::string dir = TestTmpDir();
  std::string four = NcclTestsOutput(true);
  for (int r = 4; r < kRanks; ++r) {
    const size_t at = four.find("#  Rank  " + std::to_string(r));
    four.erase(at, four.find('\n', at) + 1 - at);
  }
  WriteFile(dir + "/alltoall_8.txt", NcclTestsOutput(true));
  WriteFile(dir + "/alltoall_4.txt", four);
  const CommandResult r = RunCommand("calibrate/epsim-calibrate --import " + dir + "/alltoall_8.txt --import " + dir +
                                     "/alltoall_4.txt --base calibrate/profiles/h200.yaml --out " + dir + "/x.yaml");
  EXPECT_TRUE(r.exited && r.exit_status == 2) << r.Describe();
  EXPECT_NE(r.err.find("alltoall_4.txt: ran on 4 GPUs"), std::string::npos) << r.err;
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  // A truncated file: one line naming it and the line, exit 2, nothing written.
  std::string truncated = NcclTestsOutput(true);
  truncated.resize(truncated.rfind("N/A") - 20);
  WriteFile(dir + "/alltoall_cut.txt", truncated);
  const CommandResult cut = RunCommand("calibrate/epsim-calibrate --import " + dir + "/alltoall_cut.txt --base "
                                       "calibrate/profiles/h200.yaml --out " + dir + "/cut.yaml");
  EXPECT_TRUE(cut.exited && cut.exit_status == 2) << cut.Describe();
  EXPECT_EQ(CountLines(cut.err), 1) << cut.err;
  EXPECT_NE(cut.err.find("alltoall_cut.txt: line 22: "), std::string::npos) << cut.err;
  EXPECT_NE(cut.err.find("(truncated?)"), std::string::npos) << cut.err;
  EXPECT_FALSE(std::ifstream(dir + "/cut.yaml").good());
  const CommandResult no_base = RunCommand("calibrate/epsim-calibrate --import " + dir + "/alltoall_8.txt --out " + dir +
                                           "/x.yaml");
  EXPECT_EQ(no_base.exit_status, 2);
  EXPECT_NE(no_base.err.find("--base: missing"), std::string::npos) << no_base.err;
}

}  // namespace
}  // namespace epsim
