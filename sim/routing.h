// epsim: which experts each token chooses, where those experts live, and what that means
// for traffic: per-expert loads, drops at capacity, and the GPU-to-GPU token counts of
// dispatch (combine is the same counts in reverse).
#ifndef EPSIM_SIM_ROUTING_H_
#define EPSIM_SIM_ROUTING_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace epsim {

// The distribution each token's top-k experts are drawn from.
//   uniform      every expert equally likely
//   zipf:S       weight 1/rank^S over a seeded random permutation of the experts
//   hot:SHARE    one expert receives SHARE of all assignments, the others share the rest
//   trace:FILE   per-step expert popularity from a CSV of observed counts (step,expert,tokens):
//                step s draws from the counts of the file's step s mod (steps in the file)
struct RoutingSpec {
  enum class Kind { kUniform, kZipf, kHot, kTrace };
  Kind kind = Kind::kUniform;
  double parameter = 0;  // Zipf exponent or hot share
  std::string trace_path;                            // kTrace: the CSV as given
  std::vector<std::vector<double>> trace_weights;    // kTrace: [file step][expert] counts
  // Parses the forms above (for trace:FILE only the path; see LoadRoutingTrace); throws
  // std::invalid_argument with the reason.
  static RoutingSpec Parse(const std::string& text);
  std::string ToString() const;
};

// Reads a routing trace CSV (header "step,expert,tokens"; whole numbers; expert < num_experts;
// steps numbered from 0 without gaps) into spec.trace_weights. Throws ConfigError-like
// std::invalid_argument text "LINE: COLUMN: 'VALUE': why" for the caller to wrap.
void LoadRoutingTrace(RoutingSpec& spec, const std::string& path, int num_experts);

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

// Token-level routing of one step, condensed to what the simulator needs.
struct RoutingPlan {
  int num_gpus = 0;
  int num_experts = 0;
  std::vector<int> source_tokens;       // per source GPU: its tokens this step
  int64_t assignments = 0;              // tokens x top_k over all GPUs
  int64_t dropped = 0;                  // assignments beyond capacity
  std::vector<int64_t> expert_kept;     // per expert: assignments computed
  std::vector<int64_t> expert_dropped;  // per expert
  std::vector<int64_t> source_dropped;  // per source GPU: its assignments dropped
  // Per GPU: (expert, tokens) it computes (one entry per expert it holds and received).
  std::vector<std::vector<std::pair<int, int64_t>>> gpu_expert_tokens;
  // Per source GPU: (destination GPU, tokens sent), one entry per destination; a token is
  // sent once to each destination that holds at least one of its kept experts. Includes
  // the source itself (local tokens, never on a link).
  std::vector<std::vector<std::pair<int, int64_t>>> dispatch_tokens;
  // Per source GPU: (destination GPU, kept assignments), no deduplication: what kernels
  // that send one copy per (token, expert) move. Includes the source itself.
  std::vector<std::vector<std::pair<int, int64_t>>> dispatch_pairs;
  // Per source GPU: (destination node, tokens), a token counted once per node holding at
  // least one of its kept experts. Includes the source's own node.
  std::vector<std::vector<std::pair<int, int64_t>>> node_tokens;

  int64_t ExpertInputTokens(int gpu) const;  // assignments computed on `gpu`
};

struct RoutingParams {
  RoutingSpec spec;
  int gpus_per_node = 0;      // 0: all GPUs in one node
  int node_limit = 0;         // each token's experts on at most this many nodes; 0: no limit
  int tokens_per_gpu = 0;
  int top_k = 0;
  double capacity_factor = 0;  // 0: dropless
  bool drop_by_score = false;  // drop the lowest-scoring assignments, not the last tokens
  uint64_t seed = 0;
  int epoch = 0;               // drift epoch: which experts are popular is redrawn per epoch
  // Per-GPU token counts vary log-normally with this sigma around tokens_per_gpu (mean
  // kept); 0: every GPU has tokens_per_gpu.
  double token_sigma = 0;
  // Load-balancing strength in [0, 1]: each expert's routing probability becomes
  // (1 - balance) p_e + balance / E, a model of what an auxiliary loss or DeepSeek's bias
  // correction achieves: 0 leaves the distribution as drawn, 1 makes it uniform.
  double balance = 0;
};

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
// with the best experts), then its experts among those nodes' experts.
RoutingPlan SampleRouting(const RoutingParams& params, const Placement& placement, int step);

// Condenses explicit token choices (choices[g][t] = that token's experts, highest score
// first) into a plan, applying capacity by position or by score. Used by SampleRouting and by tests with hand-made routing.
RoutingPlan PlanFromChoices(const std::vector<std::vector<std::vector<int>>>& choices,
                            const Placement& placement, int64_t capacity_per_source,
                            int gpus_per_node = 0, bool drop_by_score = false);

}  // namespace epsim

#endif  // EPSIM_SIM_ROUTING_H_
