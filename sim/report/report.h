// epsim report: what a run prints.
//
// A '#' preamble with every parameter, then a fixed-width table (one row per step, then the
// mean row) with units in the header, then the time lost per GPU and the step-time
// percentiles.
#ifndef EPSIM_SIM_REPORT_REPORT_H_
#define EPSIM_SIM_REPORT_REPORT_H_

#include <string>

#include "sim/config/inputs.h"
#include "sim/report/records.h"

namespace epsim {

// The preamble and table, as printed.
std::string FormatReport(const SimulationInputs& inputs, const SimulationResult& result);

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_REPORT_H_
