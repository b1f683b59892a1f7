// epsim: a what-if scenario (scenarios/*.yaml) with command-line overrides.
//
// The schema is documented in scenarios/README.md. Every field can be overridden by a flag
// (--top-k 4 sets model.top_k); errors name where the bad value came from: the file and
// key, or the flag.
#ifndef EPSIM_SIM_SCENARIO_H_
#define EPSIM_SIM_SCENARIO_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sim/routing.h"

namespace epsim {

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
  int top_k = 0;
  std::string dispatch_dtype;  // "bf16" or "fp8"
  std::string combine_dtype;   // "bf16" or "fp8"
  // workload
  int gpus = 0;
  int tokens_per_gpu = 0;
  int steps = 0;
  uint64_t seed = 0;
  RoutingSpec routing;
  int drift_steps = 0;         // popularity (Zipf order, hot expert) redrawn every N steps; 0: fixed
  double token_sigma = 0;      // per-GPU tokens log-normal with this sigma (mean kept); 0: equal
  double balance = 0;          // load-balancing strength in [0, 1] (see RoutingParams::balance)
  // bursts (workload.burst EVERY:SHARE): on steps EVERY-1, 2 EVERY-1, ... one expert drawn
  // per burst takes SHARE of the assignments on top of the routing (RoutingParams::burst_*)
  int burst_every = 0;         // 0: no bursts
  double burst_share = 0;
  // strategy
  double capacity_factor = 0;  // 0: dropless
  std::string drop_policy;     // "position" (Megatron: later tokens) or "score" (lowest router score)
  // all-to-all algorithm: "direct" (every GPU pair at once, NCCL grouped send/recv),
  // "hierarchical" (DeepEP normal kernels: once per destination node over RDMA to the
  // same-rail GPU, then NVLink), "rdma-only" (every (token, expert) copy over the NICs)
  std::string a2a;
  int node_limit = 0;          // experts of a token on at most this many nodes; 0: no limit
  // expert placement: "contiguous", "round-robin", "eplb" (replicate the heaviest experts
  // with `redundant_experts` extra copies and balance the copies over GPUs, from the loads of
  // the previous `rebalance_interval` steps; other placements ignore the budget) or
  // "eplb-hierarchical" (the same budget, DeepSeek's hierarchical policy: one group of
  // contiguous experts per NVLink domain, replicated and packed inside its domain)
  std::string placement;
  // "ep": experts spread over GPUs, all-to-all; "tp": every NVLink domain holds every
  // expert sliced by tensor parallelism (all-gather of tokens and reduce-scatter of
  // outputs over NVLink, no network traffic; domains are data-parallel replicas)
  std::string parallelism;
  int redundant_experts = 0;
  int rebalance_interval = 0;
  // "none": one batch per step; "two-batch": the step's tokens split into two
  // micro-batches on a compute stream and a communication stream per GPU, so that one
  // micro-batch's expert compute runs while the other's dispatch or combine moves
  std::string overlap;
  // how to replay: "simgrid" (max-min flows on SimGrid, one mailbox put/get per flow: the
  // reference) or "analytic" (per-link processor sharing, the fast path)
  std::string engine;

  // Bytes of one token on the wire: bf16 = 2H; fp8 = H (1 + 4/128) with one fp32 scale
  // per 128 elements.
  static double TokenBytes(const std::string& dtype, int64_t hidden);
  // True for the placements that replicate experts from observed loads (eplb, eplb-hierarchical).
  bool UsesEplb() const { return placement == "eplb" || placement == "eplb-hierarchical"; }
  // Every field as (key, value text), in a fixed order: for the report and summary.json.
  std::vector<std::pair<std::string, std::string>> Fields() const;
  // Where each field's value came from ("FILE" or "--flag").
  std::map<std::string, std::string> origin;
};

// The flags that override fields, e.g. {"--top-k", "model.top_k"}.
const std::vector<std::pair<std::string, std::string>>& ScenarioFlags();

// Loads `path` (may be empty: flags must then give every required field) and applies
// `overrides` (flag -> value). Throws ConfigError naming the file and key, or the flag.
Scenario LoadScenario(const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& overrides);

// The checks that need the topology's NVLink domain size (`domain_gpus`): for
// eplb-hierarchical, workload.gpus must be whole domains and model.experts a multiple of the
// domains (one group per domain). Throws ConfigError naming the file and key, or the flag.
void CheckScenarioOnTopology(const Scenario& scenario, int domain_gpus);

}  // namespace epsim

#endif  // EPSIM_SIM_SCENARIO_H_
