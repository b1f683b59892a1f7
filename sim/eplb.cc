// epsim: EPLB replication and packing (see eplb.h).
#include "sim/eplb.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace epsim {

Placement BalancedReplication(const std::vector<double>& expert_load, int num_gpus,
                              int redundant_experts) {
  const int num_experts = static_cast<int>(expert_load.size());
  const int copies_total = num_experts + redundant_experts;
  if (num_gpus < 1 || copies_total % num_gpus != 0 || copies_total < num_gpus) {
    throw std::invalid_argument("experts + redundant experts (" + std::to_string(copies_total) +
                                ") must be a positive multiple of the GPUs (" +
                                std::to_string(num_gpus) + ")");
  }
  // 1. Replicate: one more copy to the expert with the highest load per copy (ties: lower id).
  std::vector<int> copies(num_experts, 1);
  for (int r = 0; r < redundant_experts; ++r) {
    int best = 0;
    for (int e = 1; e < num_experts; ++e)
      if (expert_load[e] / copies[e] > expert_load[best] / copies[best]) best = e;
    ++copies[best];
  }
  // 2. Pack: heaviest copy first, onto the least-loaded GPU with a free slot (DeepSeek's
  //    balanced packing; two copies of one expert on a GPU just add up there).
  struct Copy {
    double load;
    int expert;
  };
  std::vector<Copy> all;
  for (int e = 0; e < num_experts; ++e)
    for (int c = 0; c < copies[e]; ++c) all.push_back({expert_load[e] / copies[e], e});
  std::stable_sort(all.begin(), all.end(), [](const Copy& a, const Copy& b) {
    return a.load != b.load ? a.load > b.load : a.expert < b.expert;
  });
  const int slots = copies_total / num_gpus;
  std::vector<double> gpu_load(num_gpus, 0.0);
  std::vector<int> used(num_gpus, 0);
  std::vector<std::vector<int>> replicas(num_experts);
  for (const Copy& copy : all) {
    int target = -1;
    for (int g = 0; g < num_gpus; ++g)
      if (used[g] < slots && (target < 0 || gpu_load[g] < gpu_load[target])) target = g;
    gpu_load[target] += copy.load;
    ++used[target];
    replicas[copy.expert].push_back(target);
  }
  for (auto& gpus : replicas) std::sort(gpus.begin(), gpus.end());
  return Placement::FromReplicas(num_gpus, std::move(replicas));
}

std::vector<double> GpuLoads(const Placement& placement, const std::vector<double>& expert_load) {
  std::vector<double> load(placement.num_gpus(), 0.0);
  for (int e = 0; e < placement.num_experts(); ++e) {
    const auto& gpus = placement.Replicas(e);
    for (int g : gpus) load[g] += expert_load[e] / gpus.size();
  }
  return load;
}

}  // namespace epsim
