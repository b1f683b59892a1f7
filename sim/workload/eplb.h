// epsim workload: expert-parallel load balancing (EPLB): replicate the heaviest experts and place
// the copies so that every GPU carries about the same load.
//
// As DeepSeek's EPLB (github.com/deepseek-ai/EPLB, eplb.py), two policies:
//  - global (rebalance_experts with one group per cluster): with R redundant experts,
//    repeatedly give one more copy to the expert with the highest load per copy; then pack
//    the E + R copies (each carrying its expert's load / copies) onto the P GPUs,
//    (E + R) / P per GPU, heaviest first onto the least-loaded GPU with a free slot.
//  - hierarchical (rebalance_experts_hierarchical): pack the expert groups onto nodes
//    (balanced packing of group loads, G / N groups per node), replicate inside each node
//    with its (E + R) / N slots, then pack each node's copies onto its GPUs as above. Every
//    copy of an expert stays in its group's node, so node-limited routing still holds.
// Ties go to the lower expert (or group, or GPU) index; DeepSeek's torch sort leaves them open.
#ifndef EPSIM_SIM_WORKLOAD_EPLB_H_
#define EPSIM_SIM_WORKLOAD_EPLB_H_

#include <vector>

#include "sim/workload/placement.h"

namespace epsim {

// `expert_load`: observed load per expert (any unit). Throws std::invalid_argument unless
// (E + R) is a multiple of P and every GPU gets at least one copy.
Placement BalancedReplication(const std::vector<double>& expert_load, int num_gpus,
                              int redundant_experts);

// Hierarchical EPLB. Nodes are the P / gpus_per_node blocks of consecutive GPUs (the NVLink
// domains); groups are `num_groups` blocks of consecutive experts, 0 = one group per node
// (DeepSeek-V3's node-limited routing: with one group per node, DeepSeek's packing keeps
// group n on node n). Throws std::invalid_argument naming what does not divide: GPUs by
// gpus_per_node, experts by groups, groups by nodes, E + R by P (so R by nodes), or fewer
// copies than GPUs.
Placement HierarchicalReplication(const std::vector<double>& expert_load, int num_gpus,
                                  int redundant_experts, int gpus_per_node, int num_groups = 0);

// Load per GPU if every expert's load is split evenly among its copies.
std::vector<double> GpuLoads(const Placement& placement, const std::vector<double>& expert_load);

}  // namespace epsim

#endif  // EPSIM_SIM_WORKLOAD_EPLB_H_
