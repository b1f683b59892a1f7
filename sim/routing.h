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
//   trace:FILE   a CSV of observed routing, in one of two forms told apart by the header:
//                "step,expert,tokens": per-step expert counts; step s draws from the counts
//                of the file's step s mod (steps in the file);
//                "step,gpu,token,experts": every token's top-k experts (highest score first);
//                step s replays the file's step s mod (steps in the file), token for token
//                (see LoadRoutingTrace).
struct RoutingSpec {
  enum class Kind { kUniform, kZipf, kHot, kTrace };
  Kind kind = Kind::kUniform;
  double parameter = 0;  // Zipf exponent or hot share
  std::string trace_path;                            // kTrace: the CSV as given
  std::vector<std::vector<double>> trace_weights;    // kTrace, counts: [file step][expert] counts
  // kTrace, per-token choices: top_k of the file (> 0 marks this form), every token's experts
  // in file order (trace_top_k ids each), and where each file step's tokens start (one entry
  // per step plus the end).
  int trace_top_k = 0;
  std::vector<int32_t> trace_choices;
  std::vector<int64_t> trace_step_begin;
  // Parses the forms above (for trace:FILE only the path; see LoadRoutingTrace); throws
  // std::invalid_argument with the reason.
  static RoutingSpec Parse(const std::string& text);
  std::string ToString() const;
  bool IsTokenTrace() const { return kind == Kind::kTrace && trace_top_k > 0; }
  // Steps in a trace file (0 for other kinds).
  int TraceSteps() const;
};

// Routing trace files larger than this are refused before they are read (the limit of
// configuration files, kMaxConfigFileBytes): about 700 000 tokens of top-8 choices.
constexpr long long kMaxRoutingTraceBytes = 16LL << 20;

// Reads a routing trace CSV into `spec` (kind kTrace; trace_path kept if set); the header
// picks the form.
//  - "step,expert,tokens": whole numbers; expert < num_experts; steps numbered from 0 without
//    gaps; into spec.trace_weights (at most 2^24 step x expert counts).
//  - "step,gpu,token,experts": one row per token, rows ordered by step (from 0, no gaps),
//    then by (gpu, token), strictly increasing; `experts` is the token's top_k distinct
//    expert ids (< num_experts) separated by spaces, highest score first, optionally in
//    double quotes ("5 9 12 200"). Needs top_k > 0. Into spec.trace_choices.
// Lines may end in \r\n. Files over kMaxRoutingTraceBytes, folders and empty files are
// refused. Throws std::invalid_argument text "line N: COLUMN: 'VALUE': why" (or a whole-file
// reason) for the caller to prefix with the path.
void LoadRoutingTrace(RoutingSpec& spec, const std::string& path, int num_experts, int top_k = 0);

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

// Condenses explicit token choices (choices[g][t] = that token's experts, highest score
// first) into a plan, applying capacity by position or by score. Used by SampleRouting and by tests with hand-made routing.
RoutingPlan PlanFromChoices(const std::vector<std::vector<std::vector<int>>>& choices,
                            const Placement& placement, int64_t capacity_per_source,
                            int gpus_per_node = 0, bool drop_by_score = false);

}  // namespace epsim

#endif  // EPSIM_SIM_ROUTING_H_
