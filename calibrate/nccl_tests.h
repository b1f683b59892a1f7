// epsim calibration: reading the output of NVIDIA's nccl-tests (alltoall_perf, sendrecv_perf)
// into the all-to-all cases epsim-calibrate fits, so that a box someone already measured
// with nccl-tests calibrates the simulator's nccl model without running anything:
//
//   epsim-calibrate --import alltoall_perf.txt --import sendrecv_perf.txt --base h100.yaml --out box.yaml
//
// The file is the tests' standard output: "# nThread ..." and "# Using devices" with one
// "#  Rank N ... on HOST device D [..] NAME" line per rank, the column header
// ("size count type redop root time algbw busbw #wrong" twice: out-of-place, in-place; older
// versions have no root and say "error"), then one row per size. Columns are found by name.
// Each row becomes one case, from its out-of-place time:
//   alltoall_perf  a rank sends size / n bytes to each of the n - 1 others (nccl-tests'
//                  alltoall.cu: busbw = algbw x (n - 1) / n counts exactly those bytes)
//   sendrecv_perf  a rank sends size bytes to one peer (busbw = algbw)
// Rows of size 0 time the harness, not a call (alltoall.cu returns before NCCL), and are left out.
#ifndef EPSIM_CALIBRATE_NCCL_TESTS_H_
#define EPSIM_CALIBRATE_NCCL_TESTS_H_

#include <string>
#include <vector>

#include "calibrate/profile/profile.h"

namespace epsim {

struct NcclTestsRun {
  std::string file;
  std::string test;    // "alltoall_perf" or "sendrecv_perf"
  int num_ranks = 0;
  int num_hosts = 0;
  std::string device;  // rank 0's device name, e.g. "NVIDIA H20-3e"
  std::vector<AllToAllModel::Row> rows;
};

// Reads one file. `spec` is FILE, or TEST:FILE to say which test made it when the file does
// not ("# Collective test starting: TEST"; else the file's name must contain alltoall or
// sendrecv). Throws ConfigError(FILE, "line N", text, why) on anything that is not such output.
NcclTestsRun ReadNcclTests(const std::string& spec);

}  // namespace epsim

#endif  // EPSIM_CALIBRATE_NCCL_TESTS_H_
