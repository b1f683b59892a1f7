// epsim workload: which GPUs hold each expert.
#ifndef EPSIM_SIM_WORKLOAD_PLACEMENT_H_
#define EPSIM_SIM_WORKLOAD_PLACEMENT_H_

#include <cstddef>
#include <vector>

namespace epsim {

// Which GPUs hold each expert. Contiguous: GPU g holds experts [g*E/P, (g+1)*E/P).
// With more GPUs than experts (P a multiple of E), expert e is replicated on the P/E
// consecutive GPUs starting at e*P/E, and source GPU g sends to replica g mod (P/E).
class Placement {
 public:
  // Throws std::invalid_argument if the shape cannot be placed.
  static Placement Contiguous(int num_experts, int num_gpus);
  // Expert e on GPU e mod P (neighbouring experts, often co-hot, on different GPUs).
  static Placement RoundRobin(int num_experts, int num_gpus);
  // Any placement: replicas[e] = the GPUs holding a copy of expert e (at least one each).
  static Placement FromReplicas(int num_gpus, std::vector<std::vector<int>> replicas);
  // Expert copies per GPU.
  std::vector<int> CopiesPerGpu() const;
  int num_experts() const { return num_experts_; }
  int num_gpus() const { return num_gpus_; }
  // The GPU that computes expert `expert` for tokens of `src_gpu`.
  int GpuFor(int expert, int src_gpu) const {
    return replicas_[expert][ReplicaFor(expert, src_gpu)];
  }
  // Index into Replicas(expert) of the copy that serves `src_gpu`: src mod copies, or, for
  // a per-domain placement, the copy in the source's own domain.
  int ReplicaFor(int expert, int src_gpu) const {
    const size_t copies = replicas_[expert].size();
    if (copies == 1) return 0;
    if (domain_gpus_ > 0) return static_cast<int>((src_gpu / domain_gpus_) % copies);
    return static_cast<int>(src_gpu % copies);
  }
  // Every domain of `domain_gpus` GPUs holds every expert (copy d in domain d, on GPU
  // d * domain_gpus + e mod domain_gpus), and tokens stay in their domain: the layout of
  // tensor parallelism inside a domain, where each copy stands for the domain's slices.
  static Placement PerDomain(int num_experts, int num_gpus, int domain_gpus);
  const std::vector<int>& Replicas(int expert) const { return replicas_[expert]; }

 private:
  int num_experts_ = 0;
  int num_gpus_ = 0;
  int domain_gpus_ = 0;  // > 0: replicas chosen by the source's domain
  std::vector<std::vector<int>> replicas_;
};

}  // namespace epsim

#endif  // EPSIM_SIM_WORKLOAD_PLACEMENT_H_
