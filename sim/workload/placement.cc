// epsim workload: expert placement (see placement.h).
#include "sim/workload/placement.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace epsim {

Placement Placement::Contiguous(int num_experts, int num_gpus) {
  if (num_experts < 1 || num_gpus < 1) throw std::invalid_argument("needs experts and GPUs");
  if (num_gpus > num_experts && num_gpus % num_experts != 0) {
    throw std::invalid_argument("with more GPUs than experts, GPUs must be a multiple of experts (" +
                                std::to_string(num_gpus) + " GPUs, " +
                                std::to_string(num_experts) + " experts)");
  }
  Placement p;
  p.num_experts_ = num_experts;
  p.num_gpus_ = num_gpus;
  p.replicas_.resize(num_experts);
  if (num_gpus <= num_experts) {
    for (int g = 0; g < num_gpus; ++g) {
      const int first = static_cast<int>(static_cast<int64_t>(g) * num_experts / num_gpus);
      const int last = static_cast<int>(static_cast<int64_t>(g + 1) * num_experts / num_gpus);
      for (int e = first; e < last; ++e) p.replicas_[e].push_back(g);
    }
  } else {
    const int copies = num_gpus / num_experts;
    for (int e = 0; e < num_experts; ++e)
      for (int c = 0; c < copies; ++c) p.replicas_[e].push_back(e * copies + c);
  }
  return p;
}

Placement Placement::RoundRobin(int num_experts, int num_gpus) {
  if (num_gpus > num_experts) return Contiguous(num_experts, num_gpus);
  std::vector<std::vector<int>> replicas(num_experts);
  for (int e = 0; e < num_experts; ++e) replicas[e].push_back(e % num_gpus);
  return FromReplicas(num_gpus, std::move(replicas));
}

Placement Placement::FromReplicas(int num_gpus, std::vector<std::vector<int>> replicas) {
  for (const auto& gpus : replicas) {
    if (gpus.empty()) throw std::invalid_argument("every expert needs at least one GPU");
    for (int g : gpus)
      if (g < 0 || g >= num_gpus) throw std::invalid_argument("replica on a GPU that does not exist");
  }
  Placement p;
  p.num_experts_ = static_cast<int>(replicas.size());
  p.num_gpus_ = num_gpus;
  p.replicas_ = std::move(replicas);
  return p;
}

Placement Placement::PerDomain(int num_experts, int num_gpus, int domain_gpus) {
  if (domain_gpus < 1 || num_gpus % domain_gpus != 0)
    throw std::invalid_argument("GPUs must be whole domains");
  std::vector<std::vector<int>> replicas(num_experts);
  for (int e = 0; e < num_experts; ++e)
    for (int d = 0; d < num_gpus / domain_gpus; ++d) replicas[e].push_back(d * domain_gpus + e % domain_gpus);
  Placement p = FromReplicas(num_gpus, std::move(replicas));
  p.domain_gpus_ = domain_gpus;
  return p;
}

std::vector<int> Placement::CopiesPerGpu() const {
  std::vector<int> copies(num_gpus_, 0);
  for (const auto& gpus : replicas_)
    for (int g : gpus) ++copies[g];
  return copies;
}

}  // namespace epsim
