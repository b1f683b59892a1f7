// epsim calibration tests: nccl-tests output read into all-to-all cases (calibrate/nccl_tests.h).
// The alltoall_perf run is a published one (testdata/README.md); each row's bytes are checked
// against the busbw column nccl-tests printed beside it, which counts the same bytes
// (alltoall.cu: busbw = algbw x (n - 1) / n, the bytes a rank sends to others per second).
#include <string>

#include <gtest/gtest.h>

#include "calibrate/nccl_tests.h"
#include "common/error.h"
#include "tests/testing/run_command.h"

namespace epsim {
namespace {

using testing::ReadFile;
using testing::TestTmpDir;
using testing::WriteFile;

const char kH20[] = "tests/calibrate/testdata/h20_alltoall_perf.txt";

TEST(NcclTestsTest, ReadsAPublishedAllToAllRun) {
  const NcclTestsRun run = ReadNcclTests(kH20);  // the file's name says alltoall
  EXPECT_EQ(run.test, "alltoall_perf");
  EXPECT_EQ(run.num_ranks, 8);
  EXPECT_EQ(run.num_hosts, 1);
  EXPECT_EQ(run.device, "NVIDIA H20-3e");
  ASSERT_EQ(run.rows.size(), 3u);
  const double sizes[] = {1048576, 2097152, 4194304}, times_us[] = {58.14, 58.94, 59.35};
  const double busbw_GBps[] = {15.78, 31.14, 61.84};
  for (size_t i = 0; i < 3; ++i) {
    const AllToAllModel::Row& row = run.rows[i];
    EXPECT_DOUBLE_EQ(row.bytes_per_peer, sizes[i] / 8) << i;  // the count column x 4-byte floats
    EXPECT_EQ(row.peers, 7) << i;
    EXPECT_DOUBLE_EQ(row.skew, 1) << i;
    EXPECT_DOUBLE_EQ(row.bytes_sent, sizes[i] * 7 / 8) << i;
    EXPECT_NEAR(row.time_s, times_us[i] * 1e-6, 1e-15) << i;  // out-of-place, not in-place
    EXPECT_NEAR(row.bytes_sent / row.time_s / 1e9, busbw_GBps[i], 0.01) << i;  // printed to 2 decimals
  }
  // Named explicitly, any file name will do.
  const std::string renamed = TestTmpDir() + "/run1.txt";
  WriteFile(renamed, ReadFile(kH20));
  EXPECT_EQ(ReadNcclTests("alltoall_perf:" + renamed).rows.size(), 3u);
}

// sendrecv_perf in the older format (no root column, "error" for "#wrong"), with a size-0
// row (the harness alone) and NCCL's log lines between the rows.
TEST(NcclTestsTest, ReadsSendRecvInTheOlderFormatSkippingSizeZero) {
  const std::string path = TestTmpDir() + "/sendrecv_perf.out";
  WriteFile(path,
            "# nThread 1 nGpus 2 minBytes 0 maxBytes 1024 step: 2(factor) warmup iters: 5 iters: 20 validation: 1\n"
            "#\n# Using devices\n"
            "#   Rank  0 Pid   1234 on     box1 device  0 [0x07] NVIDIA H100 80GB HBM3\n"
            "#   Rank  1 Pid   1234 on     box1 device  1 [0x0f] NVIDIA H100 80GB HBM3\n"
            "#\n"
            "#                                                     out-of-place                       in-place\n"
            "#       size         count    type   redop     time   algbw   busbw  error     time   algbw   busbw  error\n"
            "#        (B)    (elements)                     (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)\n"
            "           0             0   float     sum     3.10    0.00    0.00  0e+00     3.05    0.00    0.00  0e+00\n"
            "box1:1234:1240 [0] NCCL INFO Channel 00 : 0[7000] -> 1[f000] via P2P/IPC\n"
            "        1024           256   float     sum     5.00    0.20    0.20  0e+00     4.90    0.21    0.21  0e+00\n");
  const NcclTestsRun run = ReadNcclTests(path);
  EXPECT_EQ(run.test, "sendrecv_perf");
  EXPECT_EQ(run.num_ranks, 2);
  EXPECT_EQ(run.device, "NVIDIA H100 80GB HBM3");
  ASSERT_EQ(run.rows.size(), 1u);
  EXPECT_EQ(run.rows[0].peers, 1);
  EXPECT_DOUBLE_EQ(run.rows[0].bytes_sent, 1024);
  EXPECT_NEAR(run.rows[0].time_s, 5e-6, 1e-15);
}

// The error names the file, the line and what is wrong, in one line.
void ExpectRefused(const std::string& spec, const std::string& expected) {
  try {
    ReadNcclTests(spec);
    ADD_FAILURE() << spec << ": expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
}

TEST(NcclTestsTest, RefusesWhatIsNotNcclTestsOutput) {
  const std::string text = ReadFile(kH20);
  const std::string dir = TestTmpDir();
  // Truncated: the last row cut after its out-of-place busbw.
  const std::string truncated = dir + "/truncated_alltoall.txt";
  WriteFile(truncated, text.substr(0, text.rfind("      0    59.23")) + "\n");
  ExpectRefused(truncated, "truncated_alltoall.txt: line 21: '4194304        131072     float    none      -1    "
                           "59.35   70.67   61.84': expected 13 columns (size count type redop root time algbw "
                           "busbw #wrong time algbw busbw #wrong), got 8 (truncated?)");
  const std::string foreign = dir + "/alltoall_profile.yaml";
  WriteFile(foreign, ReadFile("calibrate/profiles/h200.yaml"));
  ExpectRefused(foreign, "alltoall_profile.yaml: not nccl-tests output (no \"# Using devices\" block of ranks)");
  const std::string unnamed = dir + "/run2.txt";
  WriteFile(unnamed, text);
  ExpectRefused(unnamed, "run2.txt: cannot tell which test made it: name it alltoall_perf:FILE or sendrecv_perf:FILE");
  const std::string bad_time = dir + "/bad_time_alltoall.txt";
  std::string t = text;
  t.replace(t.find("58.14"), 5, "fast!");
  WriteFile(bad_time, t);
  ExpectRefused(bad_time, "bad_time_alltoall.txt: line 19: ");
  ExpectRefused(bad_time, "time: 'fast!' is not a time in us");
  const std::string header_only = dir + "/header_only_alltoall.txt";
  WriteFile(header_only, text.substr(0, text.find("     1048576")));
  ExpectRefused(header_only, "header_only_alltoall.txt: line 17: no rows after the header");
  ExpectRefused(dir + "/no_such_alltoall.txt", "no_such_alltoall.txt");
  const std::string twice = dir + "/twice_alltoall.txt";
  WriteFile(twice, text + text);
  ExpectRefused(twice, "twice_alltoall.txt: line 25: '# nThread 1 nGpus 8 minBytes 1048576");
  ExpectRefused(twice, "a second nccl-tests run in one file: give each run its own file");
}

}  // namespace
}  // namespace epsim
