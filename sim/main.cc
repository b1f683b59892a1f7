// epsim: what-if simulation of Mixture-of-Experts expert parallelism on GPU clusters.
//
//   epsim                                        # the bundled default scenario
//   epsim simulate scenarios/default.yaml --routing zipf:1.2 --out results/zipf12
//   epsim sweep scenarios/sweeps/capacity.yaml --out results/capacity      (sim/sweep/sweep_spec.h)
//   epsim compare default --vary a2a=direct,hierarchical --vary capacity-factor=1.0,none
//   epsim fabric-check --profile my-box.yaml --topology h800-ib                (sim/report/fabric_check.h)
//   epsim cost --profile h100 --op gemm --groups 8 --m 512 --n 4096 --k 7168 --dtype fp8   (sim/report/cost_report.h)
//
// Run `epsim --help` for every flag. Exit status: 0 on success, 2 on bad input, 1 on a
// failure while running. The commands live in sim/cli/.
#include <malloc.h>

#include <cstring>

#include "sim/cli/commands.h"

int main(int argc, char** argv) {
  // The fast path builds and frees vectors of hundreds of MB in every all-to-all (flows,
  // routes, per-link lists). glibc maps each such block afresh and the kernel zeroes it page
  // by page, which took a tenth of the CPU time at 32768 GPUs; kept in the heap (no mmap, no
  // trim), the next all-to-all reuses the same pages.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
  if (argc >= 2 && std::strcmp(argv[1], "sweep") == 0) return epsim::RunSweepCommand(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "compare") == 0) return epsim::RunCompareCommand(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "fabric-check") == 0) return epsim::RunFabricCheckCommand(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "cost") == 0) return epsim::RunCostCommand(argc, argv);
  return epsim::RunSimulateCommand(argc, argv);
}
