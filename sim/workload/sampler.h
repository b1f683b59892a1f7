// epsim workload: the seeded routing sampler: which experts each token of a step chooses,
// how many tokens each GPU has, and what capacity keeps, condensed into a RoutingPlan.
#ifndef EPSIM_SIM_WORKLOAD_SAMPLER_H_
#define EPSIM_SIM_WORKLOAD_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "sim/workload/placement.h"
#include "sim/workload/routing_plan.h"
#include "sim/workload/routing_spec.h"

namespace epsim {

struct RoutingParams {
  RoutingSpec spec;
  int gpus_per_node = 0;      // 0: all GPUs in one node
  int node_limit = 0;         // each token's experts on at most this many nodes; 0: no limit
  int tokens_per_gpu = 0;
  int top_k = 0;
  double capacity_factor = 0;  // 0: dropless
  bool drop_by_score = false;  // drop the lowest-scoring assignments, not the last tokens
  uint64_t seed = 0;
  // The layer of a stack (model.layers): each layer draws its own popularity and token
  // choices; the token counts per GPU and the bursts are the step's, the same in every
  // layer. Layer 0 draws as a single layer does.
  int layer = 0;
  int epoch = 0;               // drift epoch: which experts are popular is redrawn per epoch
  // Per-GPU token counts vary log-normally with this sigma around tokens_per_gpu (mean
  // kept); 0: every GPU has tokens_per_gpu.
  double token_sigma = 0;
  // Load-balancing strength in [0, 1]: each expert's routing probability becomes
  // (1 - balance) p_e + balance / E, a model of what an auxiliary loss or DeepSeek's bias
  // correction achieves: 0 leaves the distribution as drawn, 1 makes it uniform.
  double balance = 0;
  // Bursts: on steps burst_every - 1, 2 burst_every - 1, ... (any step index, also the
  // samples that stand for EPLB's history) one expert b, drawn from the seed per burst (see
  // BurstExpert), takes burst_share S of all assignments on top of the routing: its
  // probability becomes (1 - S) p_b + S (at most 1/top_k: a token takes an expert once),
  // every other expert's (1 - S) p_e. Other steps are sampled exactly as without bursts.
  // 0: no bursts.
  int burst_every = 0;
  double burst_share = 0;
};

// The expert that bursts in `step`, or -1 when `step` is not a burst step. Deterministic in
// (params.seed, step); independent of the drift epoch.
int BurstExpert(const RoutingParams& params, int num_experts, int64_t step);

// Tokens of each source GPU in step `step`: tokens_per_gpu, or log-normal around it
// (T exp(sigma Z - sigma^2 / 2), at least 1) when token_sigma > 0. Deterministic.
std::vector<int> TokensPerSource(const RoutingParams& params, int num_gpus, int step);

// Capacity per expert per source GPU, ceil(cf * T * k / E); -1 when dropless.
int64_t CapacityPerSource(const RoutingParams& params, int num_experts);
// Per expert and source GPU under a placement: each copy of an expert holds
// ceil(cf * T * k / total copies) (so replicas add capacity); -1 when dropless.
std::vector<int64_t> ExpertCapacities(const RoutingParams& params, const Placement& placement);

// Samples step `step` of the routing. Deterministic in (params.seed, step). Each token draws
// top_k distinct experts by successive weighted sampling without replacement; tokens are
// kept in position order up to the capacity of each (source GPU, expert), as Megatron's
// drop-at-source does. With a node limit M, a token first draws M distinct nodes (weight:
// the routing mass of the experts a node holds, as group-limited routing picks the nodes
// with the best experts), then its experts among those nodes' experts; this needs every copy
// of an expert in one node (as contiguous placement and hierarchical EPLB give). A per-token
// trace replays the file's choices instead (capacity and drop policy apply; a node limit,
// balance or bursts cannot reshape them and are refused).
RoutingPlan SampleRouting(const RoutingParams& params, const Placement& placement, int step);

// The token choices SampleRouting draws for `step`, before capacity: [source GPU][token] =
// the token's experts, highest score first. For tests and tools (SampleRouting itself never
// holds them all).
std::vector<std::vector<std::vector<int>>> SampleTokenChoices(const RoutingParams& params,
                                                              const Placement& placement,
                                                              int step);

}  // namespace epsim

#endif  // EPSIM_SIM_WORKLOAD_SAMPLER_H_
