// epsim: what a run prints and writes.
//
// Terminal: a '#' preamble with every parameter, then a fixed-width table (one row per
// step, then mean / p50 / p99 rows) with units in the header, then where files went.
// Files (--out DIR): summary.json, steps.csv, gpus.csv, experts.csv, each written to a
// temporary name and renamed.
#ifndef EPSIM_SIM_REPORT_H_
#define EPSIM_SIM_REPORT_H_

#include <string>

#include "sim/simulation.h"

namespace epsim {

extern const char kEpsimVersion[];

// The preamble and table, as printed.
std::string FormatReport(const SimulationInputs& inputs, const SimulationResult& result);
// Writes the four result files into `dir` (created if missing).
void WriteResults(const std::string& dir, const SimulationInputs& inputs,
                  const SimulationResult& result);

std::string SummaryJson(const SimulationInputs& inputs, const SimulationResult& result);
std::string StepsCsv(const SimulationResult& result);
std::string GpusCsv(const SimulationInputs& inputs, const SimulationResult& result);
std::string ExpertsCsv(const SimulationResult& result);

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_H_
