// epsim workload: the expert weights a rebalance moves (strategy.rebalance_cost blocking):
// every copy a new placement puts on a GPU that did not hold that expert before.
#ifndef EPSIM_SIM_WORKLOAD_WEIGHT_MOVES_H_
#define EPSIM_SIM_WORKLOAD_WEIGHT_MOVES_H_

#include <vector>

#include "sim/workload/placement.h"

namespace epsim {

struct WeightMove {
  int expert = 0;
  int src = 0;  // a GPU that held the expert before
  int dst = 0;  // a GPU that holds it now and did not
};

// The copies `next` places that `previous` did not, in expert then GPU order, each fetched
// from a GPU that held the expert in `previous`: the first one in the receiver's domain of
// `domain_gpus` GPUs (over NVLink), else the first one.
std::vector<WeightMove> WeightMoves(const Placement& previous, const Placement& next, int domain_gpus);

}  // namespace epsim

#endif  // EPSIM_SIM_WORKLOAD_WEIGHT_MOVES_H_
