// epsim workload: expert weights a rebalance moves (see weight_moves.h).
#include "sim/workload/weight_moves.h"

#include <algorithm>

namespace epsim {

std::vector<WeightMove> WeightMoves(const Placement& previous, const Placement& next, int domain_gpus) {
  std::vector<WeightMove> moves;
  for (int e = 0; e < next.num_experts(); ++e) {
    const std::vector<int>& before = previous.Replicas(e);
    std::vector<int> now = next.Replicas(e);
    std::sort(now.begin(), now.end());
    now.erase(std::unique(now.begin(), now.end()), now.end());
    for (const int gpu : now) {
      if (std::find(before.begin(), before.end(), gpu) != before.end()) continue;
      const auto local = std::find_if(before.begin(), before.end(),
                                      [&](int holder) { return holder / domain_gpus == gpu / domain_gpus; });
      moves.push_back({e, local != before.end() ? *local : before.front(), gpu});
    }
  }
  return moves;
}

}  // namespace epsim
