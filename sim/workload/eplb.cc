// epsim workload: EPLB replication and packing, global and hierarchical (see eplb.h).
#include "sim/workload/eplb.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace epsim {
namespace {

// DeepSeek's replicate_experts: `slots` copies in all, each extra one to the expert with the
// highest load per copy (ties: lower index). Returns copies per expert.
std::vector<int> Replicate(const std::vector<double>& load, int slots) {
  const int num_experts = static_cast<int>(load.size());
  std::vector<int> copies(num_experts, 1);
  for (int r = num_experts; r < slots; ++r) {
    int best = 0;
    for (int e = 1; e < num_experts; ++e)
      if (load[e] / copies[e] > load[best] / copies[best]) best = e;
    ++copies[best];
  }
  return copies;
}

// DeepSeek's balanced_packing: items heaviest first (ties: lower index) onto the least-loaded
// pack that still has room (ties: lower pack), items.size() / packs per pack. Returns each
// item's pack. Two copies of one expert in a pack just add up there.
std::vector<int> BalancedPacking(const std::vector<double>& item_load, int packs) {
  const int items = static_cast<int>(item_load.size());
  const int per_pack = items / packs;
  std::vector<int> order(items);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return item_load[a] > item_load[b]; });
  std::vector<double> pack_load(packs, 0.0);
  std::vector<int> used(packs, 0), pack_of(items, -1);
  for (int item : order) {
    int target = -1;
    for (int p = 0; p < packs; ++p)
      if (used[p] < per_pack && (target < 0 || pack_load[p] < pack_load[target])) target = p;
    pack_load[target] += item_load[item];
    ++used[target];
    pack_of[item] = target;
  }
  return pack_of;
}

// Replicates `experts` (their loads in `load`) into `slots` copies and packs them onto GPUs
// first_gpu .. first_gpu + gpus - 1, adding each copy's GPU to replicas[expert].
void ReplicateAndPack(const std::vector<double>& load, const std::vector<int>& experts, int slots,
                      int first_gpu, int gpus, std::vector<std::vector<int>>& replicas) {
  std::vector<double> local_load;
  for (int e : experts) local_load.push_back(load[e]);
  const std::vector<int> copies = Replicate(local_load, slots);
  std::vector<double> copy_load;  // copies expert by expert, each its expert's load / copies
  std::vector<int> copy_expert;
  for (size_t i = 0; i < experts.size(); ++i) {
    for (int c = 0; c < copies[i]; ++c) {
      copy_load.push_back(local_load[i] / copies[i]);
      copy_expert.push_back(experts[i]);
    }
  }
  const std::vector<int> gpu_of = BalancedPacking(copy_load, gpus);
  for (size_t c = 0; c < copy_expert.size(); ++c) replicas[copy_expert[c]].push_back(first_gpu + gpu_of[c]);
}

Placement Finish(int num_gpus, std::vector<std::vector<int>> replicas) {
  for (auto& gpus : replicas) std::sort(gpus.begin(), gpus.end());
  return Placement::FromReplicas(num_gpus, std::move(replicas));
}

}  // namespace

Placement BalancedReplication(const std::vector<double>& expert_load, int num_gpus,
                              int redundant_experts) {
  const int num_experts = static_cast<int>(expert_load.size());
  const int copies_total = num_experts + redundant_experts;
  if (num_gpus < 1 || copies_total % num_gpus != 0 || copies_total < num_gpus) {
    throw std::invalid_argument("experts + redundant experts (" + std::to_string(copies_total) +
                                ") must be a positive multiple of the GPUs (" +
                                std::to_string(num_gpus) + ")");
  }
  std::vector<int> all(num_experts);
  std::iota(all.begin(), all.end(), 0);
  std::vector<std::vector<int>> replicas(num_experts);
  ReplicateAndPack(expert_load, all, copies_total, 0, num_gpus, replicas);
  return Finish(num_gpus, std::move(replicas));
}

Placement HierarchicalReplication(const std::vector<double>& expert_load, int num_gpus,
                                  int redundant_experts, int gpus_per_node, int num_groups) {
  const int num_experts = static_cast<int>(expert_load.size());
  auto need = [](bool ok, const std::string& why) {
    if (!ok) throw std::invalid_argument(why);
  };
  need(num_gpus >= 1 && gpus_per_node >= 1 && num_gpus % gpus_per_node == 0,
       "GPUs (" + std::to_string(num_gpus) + ") must be whole nodes of " + std::to_string(gpus_per_node));
  const int nodes = num_gpus / gpus_per_node;
  if (num_groups == 0) num_groups = nodes;
  need(num_groups >= 1 && num_experts % num_groups == 0,
       "experts (" + std::to_string(num_experts) + ") must be a multiple of the expert groups (" +
           std::to_string(num_groups) + ")");
  need(num_groups % nodes == 0, "expert groups (" + std::to_string(num_groups) +
                                    ") must be a multiple of the nodes (" + std::to_string(nodes) + ")");
  const int copies_total = num_experts + redundant_experts;
  need(redundant_experts >= 0 && copies_total % num_gpus == 0 && copies_total >= num_gpus,
       "experts + redundant experts (" + std::to_string(copies_total) +
           ") must be a positive multiple of the GPUs (" + std::to_string(num_gpus) + ")");
  // With E and E + R multiples of N, every node has E / N experts and R / N redundant slots.

  // 1. Groups onto nodes, G / N per node, by balanced packing of the group loads. With one
  //    group per node DeepSeek keeps group n on node n (packing would only permute them).
  const int group_size = num_experts / num_groups;
  std::vector<double> group_load(num_groups, 0.0);
  for (int e = 0; e < num_experts; ++e) group_load[e / group_size] += expert_load[e];
  std::vector<int> group_node(num_groups);
  if (num_groups == nodes) {
    std::iota(group_node.begin(), group_node.end(), 0);
  } else {
    group_node = BalancedPacking(group_load, nodes);
  }
  // 2 and 3. Inside each node: replicate into its slots, pack the copies onto its GPUs.
  std::vector<std::vector<int>> replicas(num_experts);
  for (int n = 0; n < nodes; ++n) {
    std::vector<int> experts;
    for (int e = 0; e < num_experts; ++e)
      if (group_node[e / group_size] == n) experts.push_back(e);
    ReplicateAndPack(expert_load, experts, copies_total / nodes, n * gpus_per_node, gpus_per_node,
                     replicas);
  }
  return Finish(num_gpus, std::move(replicas));
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
