// epsim: expert-parallel load balancing (EPLB): replicate the heaviest experts and place
// the copies so that every GPU carries about the same load.
//
// As DeepSeek's EPLB: with R redundant experts, repeatedly give one more copy to the
// expert with the highest load per copy; then pack the E + R copies (each carrying its
// expert's load / copies) onto the P GPUs, (E + R) / P per GPU, heaviest first onto the
// least-loaded GPU with a free slot.
// Hierarchical EPLB (copies to nodes first, then GPUs) is not modelled.
#ifndef EPSIM_SIM_EPLB_H_
#define EPSIM_SIM_EPLB_H_

#include <vector>

#include "sim/routing.h"

namespace epsim {

// `expert_load`: observed load per expert (any unit). Throws std::invalid_argument unless
// (E + R) is a multiple of P and every GPU gets at least one copy.
Placement BalancedReplication(const std::vector<double>& expert_load, int num_gpus,
                              int redundant_experts);

// Load per GPU if every expert's load is split evenly among its copies.
std::vector<double> GpuLoads(const Placement& placement, const std::vector<double>& expert_load);

}  // namespace epsim

#endif  // EPSIM_SIM_EPLB_H_
