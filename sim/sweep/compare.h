// epsim sweep: `epsim compare`, several strategies side by side in one table.
//
//   epsim compare default --vary a2a=direct,hierarchical --vary capacity-factor=1.0,1.25,none
//   epsim compare default --vary placement=contiguous,eplb --redundant-experts 64 --engine analytic
//
// Each --vary FLAG=V1,V2,... is one axis; every combination is one variant. Other flags are
// fixed for every variant. The variants run as a sweep (sweep_runner.h) into --out DIR
// (default results/compare), so completed variants are reused, and the table summarises
// each variant over its steps: step time mean / p99, phases on the critical path, worst
// stall, token skew, dropped fraction, achieved all-to-all bandwidth.
#ifndef EPSIM_SIM_SWEEP_COMPARE_H_
#define EPSIM_SIM_SWEEP_COMPARE_H_

#include <string>
#include <utility>
#include <vector>

#include "common/csv.h"
#include "sim/sweep/sweep_runner.h"
#include "sim/sweep/sweep_spec.h"

namespace epsim {

struct CompareSpec {
  std::string scenario = "default";  // bundled name, path, or none
  std::string out_dir = "results/compare";
  int jobs = 0;                      // parallel variants (0: every core)
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;  // "--flag", values
  std::vector<std::pair<std::string, std::string>> fixed;             // "--flag", value
};

// The variants as a sweep: base = scenario, set = fixed, grid = axes. ConfigError naming
// the flag when one is unknown or given both fixed and varied.
SweepSpec CompareSweep(const CompareSpec& spec);

// The table, one row per variant, from the sweep's sweep.csv. Throws std::runtime_error
// when a column is missing or a cell is not a number.
std::string FormatCompareTable(const CompareSpec& spec, const CsvTable& sweep_csv);

// Runs the variants and prints the table; returns the sweep's exit status.
int RunCompare(const CompareSpec& spec, SimulateFn simulate);

}  // namespace epsim

#endif  // EPSIM_SIM_SWEEP_COMPARE_H_
