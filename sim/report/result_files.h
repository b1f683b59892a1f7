// epsim report: what a run writes (--out DIR): summary.json, steps.csv, gpus.csv,
// experts.csv and links.csv, each written to a temporary name and renamed (README "Output
// files").
#ifndef EPSIM_SIM_REPORT_RESULT_FILES_H_
#define EPSIM_SIM_REPORT_RESULT_FILES_H_

#include <string>

#include "sim/config/inputs.h"
#include "sim/report/records.h"

namespace epsim {

// Writes the five result files into `dir` (created if missing); throws std::runtime_error.
void WriteResults(const std::string& dir, const SimulationInputs& inputs, const SimulationResult& result);

std::string SummaryJson(const SimulationInputs& inputs, const SimulationResult& result);
std::string StepsCsv(const SimulationResult& result);
std::string GpusCsv(const SimulationInputs& inputs, const SimulationResult& result);
std::string ExpertsCsv(const SimulationResult& result);
std::string LinksCsv(const SimulationInputs& inputs, const SimulationResult& result);

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_RESULT_FILES_H_
