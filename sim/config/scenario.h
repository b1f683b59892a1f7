// epsim config: a what-if scenario (scenarios/*.yaml) with command-line overrides.
//
// One schema table (ScenarioSchema) says every field: its key in files, its flag, its
// default, what a value looks like, how it is read and how it is echoed. The file parser,
// the flag parser, `epsim --help`, summary.json's echo of the scenario and the check that
// scenarios/README.md documents every field all read that table. Errors name where the bad
// value came from: the file and key, or the flag.
#ifndef EPSIM_SIM_CONFIG_SCENARIO_H_
#define EPSIM_SIM_CONFIG_SCENARIO_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/enum_names.h"
#include "common/error.h"
#include "sim/config/faults.h"
#include "sim/workload/routing_spec.h"

namespace epsim {

// Element type of tokens on the wire.
enum class Dtype { kBf16, kFp8 };
// How the dispatch and combine all-to-alls move tokens (sim/traffic/traffic.h).
enum class A2aAlgorithm { kDirect, kHierarchical, kLowLatency, kRdmaOnly };
// Which kernels run the all-to-all, each with its own cost terms (sim/traffic/comm_model.h);
// kAuto: the algorithm's own (direct: nccl, hierarchical: deepep-normal, low-latency and
// rdma-only: deepep-ll).
enum class CommImpl { kAuto, kNccl, kDeepEpNormal, kDeepEpLowLatency };
// Experts spread over GPUs (all-to-all), or sliced over each NVLink domain.
enum class Parallelism { kExpert, kTensor };
enum class PlacementPolicy { kContiguous, kRoundRobin, kEplb, kEplbHierarchical };
// Which assignments an expert over capacity drops.
enum class DropPolicy { kPosition, kScore };
enum class Overlap { kNone, kTwoBatch, kForwardBackward };
// What an EPLB rebalance after step 0 costs: nothing (free), the moves before its step
// (blocking), or the moves beside its step, each layer's while its experts compute, with the
// new placement from the next step on (overlapped; weight_moves.h).
enum class RebalanceCost { kFree, kBlocking, kOverlapped };
// What a step is: the layers' forward pass (a batch of prefill or of training tokens),
// their forward and backward (training), or one decode step (each token its sequence's
// next, attending to a KV cache of workload.sequence_length tokens).
enum class Mode { kForward, kTraining, kDecode };
// How a run is replayed: SimGrid's max-min flows (the reference), the fast path, or auto:
// SimGrid where its replay is predicted to take seconds, else the fast path (engine.h).
enum class Engine { kAuto, kSimGrid, kAnalytic };
// How the fast path shares links: exact max-min, per-link processor sharing (fast, an
// approximation where flows bind on different links), or auto: max-min where it is
// predicted to take seconds (engine.h).
enum class Sharing { kAuto, kMaxMin, kProcessorSharing };

const EnumTable<Dtype>& DtypeNames();                      // bf16, fp8
const EnumTable<A2aAlgorithm>& A2aAlgorithmNames();        // direct, hierarchical, low-latency, rdma-only
const EnumTable<CommImpl>& CommImplNames();                // auto, nccl, deepep-normal, deepep-ll
const EnumTable<Parallelism>& ParallelismNames();          // ep, tp
const EnumTable<PlacementPolicy>& PlacementPolicyNames();  // contiguous, round-robin, eplb, eplb-hierarchical
const EnumTable<DropPolicy>& DropPolicyNames();            // position, score
const EnumTable<Overlap>& OverlapNames();                  // none, two-batch, forward-backward
const EnumTable<RebalanceCost>& RebalanceCostNames();      // free, blocking, overlapped
const EnumTable<Mode>& ModeNames();                        // forward, training, decode
const EnumTable<Engine>& EngineNames();                    // auto, simgrid, analytic
const EnumTable<Sharing>& SharingNames();                  // auto, max-min, processor-sharing

// True for the algorithms that send one message per (token, expert), without deduplication
// (low-latency, rdma-only).
inline bool SendsPerExpert(A2aAlgorithm algorithm) {
  return algorithm == A2aAlgorithm::kLowLatency || algorithm == A2aAlgorithm::kRdmaOnly;
}

struct Scenario {
  std::string file;            // scenario file, or "" for flags only
  std::string name;
  std::string topology;        // bundled name (topologies/NAME.yaml) or a path
  int nodes = 0;               // 0: the topology file's node count
  std::string profile;         // bundled name or path; "": the topology's GPU
  // model
  int64_t hidden = 0;
  int64_t expert_ffn = 0;
  int num_experts = 0;
  int shared_experts = 0;
  // MoE layers in the stack: a step runs them in order (the backward in reverse), each with
  // its own routing draw and, with EPLB, its own placement
  int layers = 1;
  // dense layers before the MoE layers (DeepSeek-V3: 3): each an attention (model.heads) and
  // a dense FFN of dense_ffn, priced as one expert over all of a GPU's tokens; no all-to-all
  int dense_layers = 0;
  int64_t dense_ffn = 0;
  // attention before each MoE layer (op_work.h AttentionCoreWork): query heads (0: not
  // costed), key/value heads (0: as many as query heads; fewer: grouped-query), head size
  // (0: hidden / heads)
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  // multi-head latent attention (MLA) when kv_lora_rank > 0 (op_work.h AttentionShape): the
  // key/value latent per token, the query latent (0: none), the decoupled RoPE head size
  int kv_lora_rank = 0;
  int q_lora_rank = 0;
  int rope_head_dim = 0;
  int top_k = 0;
  Dtype dispatch_dtype = Dtype::kBf16;
  Dtype combine_dtype = Dtype::kBf16;
  Dtype expert_dtype = Dtype::kBf16;   // the experts' GEMMs: weights and inputs
  Dtype attention_dtype = Dtype::kBf16;  // the attention's projections (its core stays bf16)
  // workload
  int gpus = 0;
  int tokens_per_gpu = 0;
  int steps = 0;
  uint64_t seed = 0;
  RoutingSpec routing;
  // per MoE layer of the stack, in order: each layer's distribution or trace in place of
  // `routing` (workload.layer_routing, or a trace's layer column); empty: every layer draws
  // from `routing`
  std::vector<RoutingSpec> layer_routing;
  // training: each step is the forward pass, then the backward pass (step_builder.h), after
  // every GPU's forward has ended (between them lies the rest of the model's forward and
  // backward); recompute: the backward runs the experts' forward again first (activation
  // checkpointing of the expert layer)
  Mode mode = Mode::kForward;
  bool recompute = false;
  int sequence_length = 0;     // tokens per sequence (prefill, training) or in the KV cache (decode)
  int drift_steps = 0;         // popularity (Zipf order, hot expert) redrawn every N steps; 0: fixed
  double token_sigma = 0;      // per-GPU tokens log-normal with this sigma (mean kept); 0: equal
  double balance = 0;          // load-balancing strength in [0, 1] (see RoutingParams::balance)
  // bursts (workload.burst EVERY:SHARE): on steps EVERY-1, 2 EVERY-1, ... one expert drawn
  // per burst takes SHARE of the assignments on top of the routing (RoutingParams::burst_*)
  int burst_every = 0;         // 0: no bursts
  double burst_share = 0;
  // strategy
  double capacity_factor = 0;  // 0: dropless
  DropPolicy drop_policy = DropPolicy::kPosition;
  A2aAlgorithm a2a = A2aAlgorithm::kDirect;
  CommImpl comm = CommImpl::kAuto;
  int comm_sms = 0;            // SMs the all-to-all kernels use; 0: the implementation's default
  int node_limit = 0;          // experts of a token on at most this many nodes; 0: no limit
  bool pxn = false;            // direct all-to-all: cross-rail flows relayed over NVLink (traffic.h)
  // expert placement: eplb replicates the heaviest experts with `redundant_experts` extra
  // copies and balances the copies over GPUs, from the loads of the previous
  // `rebalance_interval` steps (other placements ignore the budget); eplb-hierarchical
  // does the same within each NVLink domain (DeepSeek's hierarchical policy)
  PlacementPolicy placement = PlacementPolicy::kContiguous;
  Parallelism parallelism = Parallelism::kExpert;
  int redundant_experts = 0;
  int rebalance_interval = 0;
  // free: placements change at no cost; blocking: each rebalance after the first moves the
  // new copies' weights over the fabric before its step starts; overlapped: during its step,
  // on each GPU's communication stream while the experts compute, the step still on the old
  // placement (weight_moves.h)
  RebalanceCost rebalance_cost = RebalanceCost::kFree;
  // two-batch: the step's tokens split into two micro-batches on a compute stream and a
  // communication stream per GPU, so that one micro-batch's expert compute runs while the
  // other's dispatch or combine moves; forward-backward (training): the step's forward beside
  // a backward, as two micro-batches on those streams (DualPipe's overlapped chunks), so
  // that one pass computes while the other communicates
  Overlap overlap = Overlap::kNone;
  Engine engine = Engine::kAuto;
  Sharing sharing = Sharing::kAuto;  // the fast path's; SimGrid is always max-min
  // Parts running below their speed or rate, each from a given step on (faults.h).
  std::vector<Fault> faults;

  // Per key: the value as written and where it came from ("FILE", "--flag" or "default").
  struct Source {
    std::string text;
    std::string origin;
  };
  std::map<std::string, Source> sources;

  // Bytes of one token on the wire: bf16 = 2H; fp8 = H (1 + 4/128) with one fp32 scale
  // per 128 elements.
  static double TokenBytes(Dtype dtype, int64_t hidden);
  // The routing MoE layer `moe_layer` (0 = the first after the dense layers) draws from.
  const RoutingSpec& RoutingOfLayer(int moe_layer) const {
    return layer_routing.empty() ? routing : layer_routing[static_cast<size_t>(moe_layer)];
  }
  // What the MoE layers draw from, for checks on each: `routing` once, or layer_routing's.
  std::vector<const RoutingSpec*> LayerRoutings() const;
  // True when workload.layer_routing gives the layers' routings (else they come from
  // `routing`: the same for every layer, or a trace's layer column).
  bool LayerRoutingGiven() const;
  // The routing as the report writes it: `routing`, or the layers' given joined by "; ".
  std::string RoutingText() const;
  // True for the placements that replicate experts from observed loads (eplb, eplb-hierarchical).
  bool UsesEplb() const {
    return placement == PlacementPolicy::kEplb || placement == PlacementPolicy::kEplbHierarchical;
  }
  // The all-to-all implementation the run uses: strategy.comm, or for auto the algorithm's
  // own (nccl for direct and tensor parallelism, deepep-normal for hierarchical, deepep-ll
  // for low-latency and rdma-only).
  CommImpl Implementation() const;
  // Every field as (key, value text), in schema order: for the report and summary.json.
  std::vector<std::pair<std::string, std::string>> Fields() const;
};

class FieldReader;

// One field of the schema.
struct ScenarioField {
  const char* key;       // "model.top_k"
  const char* flag;      // "--top-k"
  const char* fallback;  // the default, as text; nullptr: required
  std::string values;    // what a value looks like, for --help ("N", "CF|none", "bf16|fp8")
  void (*read)(const FieldReader& reader, Scenario& scenario);
  std::string (*echo)(const Scenario& scenario);
};

// Every field, in the order they are read (a field may use those before it) and echoed.
const std::vector<ScenarioField>& ScenarioSchema();

// The flags that override fields, e.g. {"--top-k", "model.top_k"}, in schema order.
const std::vector<std::pair<std::string, std::string>>& ScenarioFlags();

// Loads `path` (may be empty: flags must then give every required field), applies
// `overrides` (flag -> value), reads every field and checks the fields against each other
// (CheckScenarioFields). Throws ConfigError naming the file and key, or the flag.
Scenario LoadScenario(const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& overrides);

// Where field `key` of `s` came from, as a ConfigError's (file, key): the flag
// (kCommandLine, "--flag"), the file and key, or for a default the scenario file (or the
// command line when there is none) and the key.
std::pair<std::string, std::string> FieldOrigin(const Scenario& s, const std::string& key);
// A ConfigError about field `key` of `s`, naming its origin and value as written.
ConfigError FieldError(const Scenario& s, const std::string& key, const std::string& why);

}  // namespace epsim

#endif  // EPSIM_SIM_CONFIG_SCENARIO_H_
