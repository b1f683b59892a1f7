// epsim fabric-check: a profile's measured all-to-all replayed on a topology's fabric model.
// The "measured" profile here is made up from a known device (NCCL at 140 GB/s per GPU, 10 us
// per call and 0.5 us per peer), so every number the command prints has a closed form to be
// checked against.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testing/run_command.h"

namespace {

using epsim::testing::CommandResult;
using epsim::testing::CountLines;
using epsim::testing::ReadFile;
using epsim::testing::RunCommand;
using epsim::testing::TestTmpDir;
using epsim::testing::WriteFile;

constexpr int kRanks = 8;
constexpr double kDeviceBps = 140e9, kDeviceFixedS = 10e-6, kDevicePerPeerS = 0.5e-6;  // the made-up device
constexpr double kModelBps = 160e9, kModelLatencyS = 1e-6;  // topologies/h800-ib.yaml: 200 GB/s x 0.8, 1 us
// nccl's default terms (docs/calibration_sources.md D.2): 3.7 us to one peer, 10.7 us to 7.
constexpr double kDefaultPerPeerS = (10.7e-6 - 3.7e-6) / 6, kDefaultFixedS = 3.7e-6 - kDefaultPerPeerS;

struct Case {
  double bytes_per_peer, skew;
  int peers;
  // epsim-calibrate's exchange: each rank sends the base to its next `peers` ranks, skew x
  // base to the first of them.
  double BytesSent() const { return bytes_per_peer * (peers - 1) + bytes_per_peer * skew; }
  double DeviceTimeS() const { return kDeviceFixedS + peers * kDevicePerPeerS + BytesSent() / kDeviceBps; }
};
const std::vector<Case> kCases = {{1 << 20, 1, 1}, {1 << 20, 4, 7}, {64 << 20, 1, 7}, {64 << 20, 4, 1}, {64 << 20, 4, 7}};

// The bundled h800 datasheet profile plus an NCCL all-to-all "measured" on the made-up device
// (with a fitted rate of `fitted_Bps`, the device's own unless given).
std::string MeasuredProfile(const std::string& backend, int ranks, double fitted_Bps = kDeviceBps) {
  std::ostringstream a2a;
  a2a << "  a2a:\n    form: alltoall\n    backend: " << backend << "\n    num_ranks: " << ranks
      << "\n    fixed_us: " << kDeviceFixedS * 1e6 << "\n    per_message_us: " << kDevicePerPeerS * 1e6
      << "\n    bandwidth_GBps: " << fitted_Bps / 1e9 << "\n    table:\n";
  for (const Case& c : kCases) {
    a2a << "      - {bytes_per_peer: " << c.bytes_per_peer << ", skew: " << c.skew << ", peers: " << c.peers
        << ", bytes_sent: " << c.BytesSent() << ", time_us: " << c.DeviceTimeS() * 1e6 << "}\n";
  }
  const std::string path = TestTmpDir() + "/measured-" + backend + "-" + std::to_string(ranks) + "-" +
                           std::to_string(static_cast<long long>(fitted_Bps)) + ".yaml";
  // The operations mapping is the file's last block, so the all-to-all can go at its end.
  WriteFile(path, ReadFile("calibrate/profiles/h800.yaml") + a2a.str());
  return path;
}

TEST(FabricCheckTest, ReplaysEachMeasuredCaseAndStatesTheEfficiencyItImplies) {
  const CommandResult r =
      RunCommand("sim/epsim fabric-check --profile " + MeasuredProfile("nccl", kRanks) + " --topology h800-ib");
  ASSERT_TRUE(r.exited && r.exit_status == 0) << r.Describe();
  std::vector<std::vector<double>> rows;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    std::vector<double> v(9);
    if (std::sscanf(line.c_str(), " %lf %lf %lf %lf %lf %lf %lf%% %lf %lf%%", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7], &v[8]) == 9)
      rows.push_back(v);
  }
  ASSERT_EQ(rows.size(), kCases.size()) << r.out;
  for (size_t i = 0; i < kCases.size(); ++i) {
    const Case& c = kCases[i];
    const double measured_us = c.DeviceTimeS() * 1e6;
    // On an NVSwitch every GPU's port sends and receives BytesSent: that over the port rate,
    // plus one switch latency, after the call's fixed and per-peer costs. The fixed costs are
    // whole calls measured through the switch, taken less its latency: with the profile, the
    // model gives back the measurement.
    const double with_profile_us =
        (kDeviceFixedS - kModelLatencyS + c.peers * kDevicePerPeerS + kModelLatencyS + c.BytesSent() / kDeviceBps) *
        1e6;
    const double defaults_us =
        (kDefaultFixedS - kModelLatencyS + c.peers * kDefaultPerPeerS + kModelLatencyS + c.BytesSent() / kModelBps) *
        1e6;
    EXPECT_EQ(rows[i][2], c.peers) << "case " << i;
    EXPECT_NEAR(rows[i][4], measured_us, 0.05 + 1e-4 * measured_us) << "case " << i;
    EXPECT_NEAR(rows[i][5], with_profile_us, 0.05 + 1e-4 * with_profile_us) << "case " << i;
    EXPECT_NEAR(rows[i][7], defaults_us, 0.05 + 1e-4 * defaults_us) << "case " << i;
  }
  EXPECT_NE(r.out.find("fit: 10 us + 0.5 us per peer + bytes sent / 140.0 GB/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scale_up.efficiency 0.700 of 200.0 GB/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nccl at 9 us + 0.5 us per peer (without it: 1.53 us + 1.17 us"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the fitted fixed cost (10 us) is a whole call timed on the host"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("less the 1 us of scale_up.latency it adds to every flow"), std::string::npos) << r.out;
}

void ExpectOneLineError(const std::string& args, const std::string& expected) {
  const CommandResult r = RunCommand("sim/epsim fabric-check " + args);
  EXPECT_TRUE(r.exited && r.exit_status == 2) << args << "\n" << r.Describe();
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(FabricCheckTest, RefusesWhatIsNotAnNvlinkMeasurement) {
  // MPI between processes (the CPU calibration) moves host memory, not NVLink.
  ExpectOneLineError("--profile cpu-dev --topology h800-ib", "cpu-dev.yaml: operations.a2a.backend: 'mpi'");
  // A datasheet profile measured nothing.
  ExpectOneLineError("--profile h800 --topology h800-ib", "h800.yaml: operations.a2a: missing");
  ExpectOneLineError("--profile " + MeasuredProfile("rccl", kRanks) + " --topology h800-ib",
                     "operations.a2a.backend: 'rccl': unknown backend");
  // More GPUs than one NVLink domain of the topology holds.
  ExpectOneLineError("--profile " + MeasuredProfile("nccl", 16) + " --topology h800-ib",
                     "operations.a2a.num_ranks: '16': must be 2 to the GPUs of one NVLink domain of topology "
                     "h800-ib (8)");
  // Faster than the topology's NVLink can go: measured on another device.
  ExpectOneLineError("--profile " + MeasuredProfile("nccl", kRanks, 900e9) + " --topology h800-ib",
                     "operations.a2a.bandwidth_GBps: '900': more than topology h800-ib's NVLink line rate (200 GB/s)");
  // Rows that are not the calibrator's exchange, or that no measurement could produce (the
  // replay would see an infinite exchange).
  const std::string profile = ReadFile(MeasuredProfile("nccl", kRanks));
  const std::string huge = TestTmpDir() + "/huge.yaml", instant = TestTmpDir() + "/instant.yaml";
  const std::string slow = TestTmpDir() + "/slow.yaml", miscounted = TestTmpDir() + "/miscounted.yaml";
  WriteFile(huge, profile + "      - {bytes_per_peer: 1e300, skew: 1e300, peers: 7, bytes_sent: 1e300, time_us: 1}\n");
  WriteFile(instant, profile + "      - {bytes_per_peer: 1, skew: 1, peers: 7, bytes_sent: 7, time_us: 1e-300}\n");
  WriteFile(slow, profile + "      - {bytes_per_peer: 1, skew: 1, peers: 7, bytes_sent: 7, time_us: 1e300}\n");
  WriteFile(miscounted, profile + "      - {bytes_per_peer: 1024, skew: 4, peers: 7, bytes_sent: 1024, time_us: 50}\n");
  ExpectOneLineError("--profile " + huge + " --topology h800-ib",
                     "operations.a2a.table[5].bytes_per_peer: '1e+300': with skew 1e+300 a message exceeds 1 PB");
  ExpectOneLineError("--profile " + instant + " --topology h800-ib",
                     "operations.a2a.table[5].time_us: '1e-300': outside 1 ns to 1e6 s");
  ExpectOneLineError("--profile " + slow + " --topology h800-ib",
                     "operations.a2a.table[5].time_us: '1e+300': outside 1 ns to 1e6 s");
  ExpectOneLineError("--profile " + miscounted + " --topology h800-ib",
                     "operations.a2a.table[5].bytes_sent: '1024': expected 10240 (bytes_per_peer x (peers - 1 + skew))");
  const std::string too_many_peers = TestTmpDir() + "/too_many_peers.yaml";
  WriteFile(too_many_peers, profile + "      - {bytes_per_peer: 1, skew: 1, peers: 8, bytes_sent: 8, time_us: 5}\n");
  ExpectOneLineError("--profile " + too_many_peers + " --topology h800-ib",
                     "operations.a2a.table[5].peers: '8': more than num_ranks - 1");
  ExpectOneLineError("--topology h800-ib", "--profile: missing");
  ExpectOneLineError("--profile h800", "--topology: missing");
  ExpectOneLineError("--profile h800 --topology no-such-cluster", "no-such-cluster");
  ExpectOneLineError("--profile h800 --topology h800-ib --steps 3", "--steps: unknown flag");
  ExpectOneLineError("--profile h800 --profile h100 --topology h800-ib", "--profile: 'h100': given twice");
}

}  // namespace
