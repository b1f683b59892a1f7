// epsim calibration tests: epsim-calibrate end to end on the CPU with the tiny sweep: exit
// code, a profile the simulator's loader accepts, the CSV beside it, and clear errors.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "calibrate/profile.h"

namespace {

struct CliRun {
  int status = -1;
  std::string out, err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

CliRun Calibrate(const std::string& args) {
  const std::string dir = ::testing::TempDir();
  const std::string out = dir + "/cal_out.txt", err = dir + "/cal_err.txt";
  const int raw = std::system(("calibrate/epsim-calibrate " + args + " >" + out + " 2>" + err).c_str());
  CliRun r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

TEST(CalibrateCliTest, TinyCpuRunWritesLoadableProfileAndCsv) {
  const std::string yaml = ::testing::TempDir() + "/tiny-cpu.yaml";
  const CliRun r = Calibrate("--backend cpu --sweep tiny --threads 2 --no-progress --out " + yaml);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("# epsim-calibrate: backend cpu, sweep tiny", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("0 wrong results"), std::string::npos) << r.out;
  const epsim::Profile p = epsim::LoadProfile(yaml);
  EXPECT_EQ(p.source, "measured");
  EXPECT_EQ(p.name, "tiny-cpu");
  for (const char* op : {"route", "layout", "permute", "expert", "combine"}) {
    const epsim::OpModel& m = p.Op(op);
    EXPECT_GE(m.num_points, 3) << op;
    EXPECT_GT(m.TimeS(1e6, 1e6, 8), 0) << op;
  }
  EXPECT_TRUE(p.a2a.present);
  EXPECT_NE(p.a2a.skipped.find("mpirun"), std::string::npos);  // one process: skipped, said why
  const std::string csv = ReadFile(::testing::TempDir() + "/tiny-cpu.csv");
  EXPECT_EQ(csv.rfind("op,backend,tokens,hidden,ffn,experts,top_k,ranks,bytes_per_peer,skew,flops,bytes,", 0), 0u);
  int rows = 0;
  for (char c : csv) rows += c == '\n';
  EXPECT_GE(rows, 16 * 3 + 1);  // every sample of every case
}

TEST(CalibrateCliTest, OneOpOnly) {
  const std::string yaml = ::testing::TempDir() + "/permute-only.yaml";
  const CliRun r = Calibrate("--backend cpu --sweep tiny --ops permute --no-progress --out " + yaml);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("lacks route,expert,combine"), std::string::npos) << r.out;
}

TEST(CalibrateCliTest, BadFlagsExitTwoWithOneClearLine) {
  CliRun r = Calibrate("--backend tpu --out /tmp/x.yaml");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--backend: tpu"), std::string::npos) << r.err;
  r = Calibrate("--backend cpu --ops route,warp --out /tmp/x.yaml");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--ops: warp: unknown operation"), std::string::npos) << r.err;
  r = Calibrate("--backend cpu");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
}

}  // namespace
