// epsim calibration tests: epsim-calibrate end to end on the CPU with the tiny sweep: exit
// code, a profile the simulator's loader accepts, the CSV beside it, and clear errors; and
// under faults: a kernel giving a wrong result (the EPSIM_CALIBRATE_CORRUPT_OP test hook),
// one process or one MPI rank (no all-to-all to measure), the CUDA backend without a GPU.
//
//   bazel test //tests/calibrate:calibrate_cli_test
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "calibrate/profile/op_work.h"
#include "calibrate/profile/profile.h"
#include "common/csv.h"
#include "tests/testing/run_command.h"

namespace {

using epsim::testing::CommandOptions;
using epsim::testing::CommandResult;
using epsim::testing::CountLines;
using epsim::testing::ReadFile;

// Set by tests/calibrate/BUILD from what the build found (third_party/cuda).
#ifdef EPSIM_TEST_WITH_CUDA
constexpr bool kBuiltWithCuda = true;
#else
constexpr bool kBuiltWithCuda = false;
#endif
#ifdef EPSIM_TEST_WITH_MPI
constexpr bool kBuiltWithMpi = true;
#else
constexpr bool kBuiltWithMpi = false;
#endif

// The operations a wrong result can be injected into in one process (a2a needs 2 ranks:
// calibrate_mpi_test.sh).
const char* const kLocalOps[] = {"route", "layout", "permute", "expert", "combine"};

CommandResult Calibrate(const std::string& args, const std::string& env = "") {
  return epsim::testing::RunCommand("calibrate/epsim-calibrate " + args, CommandOptions{300, env});
}

// A fresh, empty folder under the test's temporary directory.
std::string FreshDir(const std::string& name) {
  const std::string dir = epsim::testing::TestTmpDir() + "/" + name;
  std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str());
  return dir;
}

// Every name in `dir` (temporary files too), sorted.
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string Joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& n : names) text += n + " ";
  return text;
}

// Whether this machine shows an NVIDIA device to processes (the driver's device files),
// found without CUDA, so the CUDA test knows which outcome to expect.
int NvidiaDeviceFiles() {
  int n = 0;
  for (const std::string& name : ListDir("/dev"))
    if (name.rfind("nvidia", 0) == 0 && name.size() > 6 && std::isdigit(static_cast<unsigned char>(name[6]))) ++n;
  return n;
}

// The profile at `yaml` loads, has every local op fitted, and says why a2a was skipped.
void ExpectLoadableWithoutAllToAll(const std::string& yaml, const std::string& skip_reason) {
  const epsim::Profile p = epsim::LoadProfile(yaml);
  EXPECT_EQ(p.source, "measured");
  for (const char* op : kLocalOps) {
    const epsim::OpModel& m = p.Op(op);
    EXPECT_GE(m.num_points, 3) << op;
    if (std::string(op) == "expert") {  // the layer over uneven rows (calibrate/op_expert.cc)
      EXPECT_TRUE(m.IsGroupedGemm());
      EXPECT_GT(m.GroupedGemmS({{8, 0, 3}, 256, 128, epsim::GemmDtype::kBf16}), 0);
    } else {
      EXPECT_GT(m.TimeS(1e6, 1e6, 8), 0) << op;
    }
  }
  EXPECT_TRUE(p.a2a.present);
  EXPECT_NE(p.a2a.skipped.find(skip_reason), std::string::npos) << p.a2a.skipped;
}

TEST(CalibrateCliTest, TinyCpuRunWritesLoadableProfileAndCsv) {
  const std::string dir = FreshDir("tiny");
  const std::string yaml = dir + "/tiny-cpu.yaml";
  const CommandResult r = Calibrate("--backend cpu --sweep tiny --threads 2 --no-progress --out " + yaml);
  ASSERT_EQ(r.exit_status, 0) << r.Describe();
  EXPECT_EQ(r.out.rfind("# epsim-calibrate: backend cpu, sweep tiny", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("0 wrong results"), std::string::npos) << r.out;
  EXPECT_EQ(epsim::LoadProfile(yaml).name, "tiny-cpu");
  // One process: the all-to-all is skipped, with the reason, and the rest is there.
  ExpectLoadableWithoutAllToAll(yaml, kBuiltWithMpi ? "run under mpirun -np 2" : "built without MPI");
  const std::string csv = ReadFile(dir + "/tiny-cpu.csv");
  EXPECT_EQ(csv.rfind("op,backend,tokens,hidden,ffn,experts,top_k,ranks,peers,bytes_per_peer,skew,distribution,rows,"
                      "dtype,flops,bytes,",
                      0),
            0u);
  EXPECT_GE(CountLines(csv), 16 * 3 + 1);  // every sample of every case
  // Written under temporary names and renamed: nothing else is left.
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{"tiny-cpu.csv", "tiny-cpu.yaml"}));

  // Every measured case's work is what the simulator computes for its shape
  // (calibrate/profile/op_work.h): the calibrator's rates mean what the simulator assumes.
  const epsim::CsvTable table = epsim::ParseCsv(csv, "tiny-cpu.csv");
  std::set<std::string> ops_checked;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    auto at = [&](const char* column) { return table.Number(r, table.Column(column)); };
    const std::string op = table.rows[r][table.Column("op")];
    const double t = at("tokens"), h = at("hidden"), k = at("top_k");
    epsim::OpWork want;
    if (op == "route") want = epsim::RouteWork(t, h, at("experts"));
    else if (op == "layout") want = epsim::LayoutWork(t, k);
    else if (op == "permute") want = epsim::PermuteWork(t, 2 * h);  // bf16 rows
    else if (op == "expert") {
      // The layer: gate/up and down grouped over the rows the case lists, which sum to G x M.
      std::vector<int64_t> rows;
      std::stringstream list(table.rows[r][table.Column("rows")]);
      for (std::string part; std::getline(list, part, ';');) rows.push_back(std::stoll(part));
      int64_t total = 0;
      for (const int64_t m : rows) total += m;
      EXPECT_EQ(total, static_cast<int64_t>(at("experts") * t)) << "row " << r;
      const epsim::OpWork up = epsim::GroupedGemmWork(epsim::GateUpGemm(rows, h, at("ffn"), epsim::GemmDtype::kBf16));
      const epsim::OpWork down = epsim::GroupedGemmWork(epsim::DownGemm(rows, h, at("ffn"), epsim::GemmDtype::kBf16));
      want = {up.flops + down.flops, up.bytes + down.bytes, t};
    }
    else if (op == "combine") want = epsim::CombineWork(t * k, t, h);
    else continue;
    ops_checked.insert(op);
    EXPECT_NEAR(at("flops"), want.flops, 1e-5 * want.flops) << op << " row " << r;
    EXPECT_NEAR(at("bytes"), want.bytes, 1e-5 * want.bytes) << op << " row " << r;
  }
  EXPECT_EQ(ops_checked, (std::set<std::string>{"combine", "expert", "layout", "permute", "route"}));
}

TEST(CalibrateCliTest, OneOpOnly) {
  const std::string yaml = FreshDir("one_op") + "/permute-only.yaml";
  const CommandResult r = Calibrate("--backend cpu --sweep tiny --ops permute --no-progress --out " + yaml);
  ASSERT_EQ(r.exit_status, 0) << r.Describe();
  EXPECT_NE(r.out.find("lacks route,expert,combine"), std::string::npos) << r.out;
}

TEST(CalibrateCliTest, BadFlagsExitTwoWithOneClearLine) {
  const std::string dir = FreshDir("bad_flags");
  CommandResult r = Calibrate("--backend tpu --out " + dir + "/x.yaml");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_EQ(r.err, "epsim-calibrate: error: command line: --backend: 'tpu': expected cpu or cuda\n");
  r = Calibrate("--backend cpu --ops route,warp --out " + dir + "/x.yaml");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--ops: 'warp': unknown operation"), std::string::npos) << r.err;
  // The same syntax as every epsim command: --flag=value, and one value per flag.
  r = Calibrate("--backend=tpu --out=" + dir + "/x.yaml");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_NE(r.err.find("--backend: 'tpu'"), std::string::npos) << r.err;
  r = Calibrate("--backend cpu --backend cuda --out " + dir + "/x.yaml");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_NE(r.err.find("--backend: 'cuda': given twice"), std::string::npos) << r.err;
  r = Calibrate("--backend cpu");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
  // The output folder is checked before anything is measured.
  r = Calibrate("--backend cpu --sweep tiny --out " + dir + "/no/such/folder/x.yaml");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(r.err, "epsim-calibrate: error: command line: --out: '" + dir + "/no/such/folder/x.yaml': folder " + dir +
                       "/no/such/folder does not exist\n");
  EXPECT_EQ(r.out, "");
  r = Calibrate("--backend cpu --sweep tiny --out " + dir);
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_NE(r.err.find("is a folder"), std::string::npos) << r.err;
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{});
}

// A kernel that computes a wrong result: the check against naive loops catches it before
// anything is timed; exit 1, one line naming the operation and the mismatch, and no file at
// all in the output folder (neither the profile nor the samples CSV, nor a temporary).
TEST(CalibrateCliTest, WrongKernelResultExitsOneAndWritesNothing) {
  for (const char* op : kLocalOps) {
    SCOPED_TRACE(op);
    const std::string dir = FreshDir(std::string("corrupt_") + op);
    const CommandResult r = Calibrate("--backend cpu --sweep tiny --threads 2 --no-progress --out " + dir + "/p.yaml",
                                      std::string("EPSIM_CALIBRATE_CORRUPT_OP=") + op);
    EXPECT_EQ(r.exit_status, 1) << r.Describe();
    EXPECT_EQ(CountLines(r.err), 1) << r.err;
    // "epsim-calibrate: OP: CPU ... differs from naive loops...: element 0 is X, expected Y;
    // nothing written" (exact ops) or "...: error E, limit L; nothing written" (tolerances).
    EXPECT_EQ(r.err.rfind(std::string("epsim-calibrate: ") + op + ": CPU ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("differs from naive loops"), std::string::npos) << r.err;
    const bool names_mismatch = r.err.find(": element 0 is ") != std::string::npos ||
                                r.err.find(": error ") != std::string::npos;
    EXPECT_TRUE(names_mismatch) << r.err;
    EXPECT_NE(r.err.find("; nothing written\n"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("\nop "), std::string::npos) << "timed after a wrong result:\n" << r.out;
    EXPECT_EQ(ListDir(dir), std::vector<std::string>{}) << Joined(ListDir(dir));
  }
}

// The hook only corrupts the named operation: the others still pass and are written.
TEST(CalibrateCliTest, CorruptingAnOpNotRunLeavesTheRunCorrect) {
  const std::string dir = FreshDir("corrupt_other");
  const CommandResult r = Calibrate("--backend cpu --sweep tiny --ops permute --no-progress --out " + dir + "/p.yaml",
                                    "EPSIM_CALIBRATE_CORRUPT_OP=combine");
  ASSERT_EQ(r.exit_status, 0) << r.Describe();
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{"p.csv", "p.yaml"}));
}

TEST(CalibrateCliTest, UnknownCorruptOpIsRefused) {
  const std::string dir = FreshDir("corrupt_unknown");
  const CommandResult r = Calibrate("--backend cpu --sweep tiny --out " + dir + "/p.yaml",
                                    "EPSIM_CALIBRATE_CORRUPT_OP=warp");
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_EQ(r.err.find("epsim-calibrate: error: EPSIM_CALIBRATE_CORRUPT_OP: 'warp': unknown operation"), 0u) << r.err;
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{});
}

// One MPI rank: the all-to-all cannot be measured; it is skipped with the reason and every
// other operation is measured and written.
TEST(CalibrateCliTest, OneMpiRankSkipsAllToAllAndWritesTheRest) {
  if (!kBuiltWithMpi) GTEST_SKIP() << "built without MPI";
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "no mpirun (openmpi-bin)";
  const std::string dir = FreshDir("one_rank");
  const CommandResult r = epsim::testing::RunCommand(
      "mpirun -np 1 calibrate/epsim-calibrate --backend cpu --sweep tiny --threads 2 --no-progress --out " + dir +
          "/one-rank.yaml",
      CommandOptions{300,
                     "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader "
                     "OMPI_MCA_plm=isolated OMPI_MCA_btl_vader_single_copy_mechanism=none"});
  ASSERT_EQ(r.exit_status, 0) << r.Describe();
  EXPECT_NE(r.out.find("# skipped a2a: needs 2+ ranks"), std::string::npos) << r.out;
  ExpectLoadableWithoutAllToAll(dir + "/one-rank.yaml", "needs 2+ ranks");
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{"one-rank.csv", "one-rank.yaml"}));
}

// The CUDA backend where it cannot run (no GPU or no driver, as on the build machine; or a
// binary built without CUDA): exit 3, one line saying why, nothing written. Where the
// machine has an NVIDIA GPU, the same command must measure and write a loadable profile;
// with one GPU the all-to-all is skipped and says so.
TEST(CalibrateCliTest, CudaBackendWithoutUsableGpuExitsThreeAndWritesNothing) {
  const std::string dir = FreshDir("cuda");
  const std::string yaml = dir + "/cuda.yaml";
  const CommandResult r = Calibrate("--backend cuda --sweep tiny --no-progress --out " + yaml);
  const int gpus = NvidiaDeviceFiles();
  if (kBuiltWithCuda && gpus > 0) {
    ASSERT_EQ(r.exit_status, 0) << r.Describe();
    const epsim::Profile p = epsim::LoadProfile(yaml);
    for (const char* op : kLocalOps) EXPECT_GE(p.Op(op).num_points, 3) << op;
    if (gpus == 1) {
      EXPECT_NE(p.a2a.skipped.find("needs 2+ GPUs in this process, found 1"), std::string::npos) << p.a2a.skipped;
    }
    return;
  }
  EXPECT_EQ(r.exit_status, 3) << r.Describe();
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("epsim-calibrate: --backend cuda: ", 0), 0u) << r.err;
  if (!kBuiltWithCuda) {
    EXPECT_NE(r.err.find("built without CUDA"), std::string::npos) << r.err;
  } else {
    // The driver, said plainly first: none here (a too-old one says which CUDA it supports
    // and what this build needs); with a driver, the CUDA runtime's own reason.
    const bool no_driver =
        r.err == "epsim-calibrate: --backend cuda: no NVIDIA driver is loaded (cudaDriverGetVersion reports none)\n";
    const bool old_driver = r.err.find("the NVIDIA driver supports CUDA up to") != std::string::npos;
    const bool runtime = r.err.rfind("epsim-calibrate: --backend cuda: cudaGetDeviceCount: ", 0) == 0;
    EXPECT_TRUE(no_driver || old_driver || runtime) << r.err;
  }
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{}) << Joined(ListDir(dir));
}

}  // namespace
