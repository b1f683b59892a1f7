// epsim simulation: one what-if run, through every stage of the data flow:
//
//   inputs (sim/config) -> per-step routing (sim/workload) -> flows and compute
//   (sim/traffic, sim/engine) -> replay on an engine -> records and summary (sim/report)
#ifndef EPSIM_SIM_SIMULATION_SIMULATION_H_
#define EPSIM_SIM_SIMULATION_SIMULATION_H_

#include "sim/config/inputs.h"
#include "sim/report/records.h"
#include "sim/report/trace.h"

namespace epsim {

// Runs the replay. With the SimGrid engine this creates the process's SimGrid engine: call
// once per process. With a `trace`, every step is also added to it.
SimulationResult RunSimulation(const SimulationInputs& inputs, TraceWriter* trace = nullptr);

}  // namespace epsim

#endif  // EPSIM_SIM_SIMULATION_SIMULATION_H_
