// epsim workload: one step's routing condensed to what the simulator needs (per-expert
// loads, drops, GPU-to-GPU token counts), and how it is built from token choices.
#ifndef EPSIM_SIM_WORKLOAD_ROUTING_PLAN_H_
#define EPSIM_SIM_WORKLOAD_ROUTING_PLAN_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "sim/workload/placement.h"

namespace epsim {

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

// Builds a RoutingPlan from token choices given source by source, applying capacity per
// (source GPU, expert): by position (as Megatron's drop-at-source: a token's assignments
// beyond its experts' capacity are dropped as tokens arrive) or by score (once all of a
// source's tokens are in, the lowest-scoring assignments go first; see KeepByScore).
class PlanBuilder {
 public:
  // "Node" is a block of `gpus_per_node` consecutive GPUs (0: one node).
  PlanBuilder(const Placement& placement, int gpus_per_node, bool drop_by_score);
  // Starts source `src`, `num_tokens` tokens, with `capacity` per expert (-1: none).
  void BeginSource(int src, int num_tokens, std::vector<int64_t> capacity);
  // One token's experts, highest score first (every token of a step has as many).
  void AddToken(const std::vector<int>& experts);
  void EndSource();
  // Adds the sources of `part`, a builder of the same placement over other sources, as if
  // they had been added here (the routing sampler builds a part per thread).
  void Absorb(PlanBuilder&& part);
  // The plan, once every source has ended.
  RoutingPlan Finish();

 private:
  // Adds one kept-or-dropped token: keep[i] says whether experts[i] is kept (null: drop by
  // position against capacity_).
  void Accumulate(const std::vector<int>& experts, const char* keep);

  RoutingPlan plan_;
  const Placement& placement_;
  bool drop_by_score_;
  int gpus_per_node_;
  std::vector<int64_t> capacity_;     // per expert, for the current source
  std::vector<int> buffered_;         // the current source's choices, token-major (by score)
  int top_k_ = 0;                     // experts per token (by score)
  int src_ = 0;
  std::vector<int> sources_;          // the sources begun here, in order
  int64_t token_ = 0;                 // index of the token within its source
  std::vector<int64_t> used_;         // per expert: kept assignments of this source
  // What the current source sends to one destination (a GPU or a node); the counts of one
  // destination side by side, since every assignment updates them together.
  struct DestinationCount {
    int64_t tokens = 0;  // tokens (deduplicated)
    int64_t pairs = 0;   // (token, expert) pairs
    int64_t seen = -1;   // the last token counted
  };
  std::vector<DestinationCount> to_gpu_;   // per destination GPU
  std::vector<DestinationCount> to_node_;  // per destination node (pairs unused)
  std::vector<int> target_gpu_;       // per expert: the GPU serving the current source,
  std::vector<int> target_node_;      // its node
  std::vector<int64_t> target_slot_;  // and its index into replica_tokens_
  std::vector<int> touched_;          // destination GPUs of this source, in first-use order
  std::vector<int> touched_nodes_;    // and their nodes (sorted as the source ends)
  std::vector<int64_t> replica_offset_;  // per expert: first index in replica_tokens_
  std::vector<int64_t> replica_tokens_;  // per (expert, replica): assignments kept
};

// Condenses explicit token choices (choices[g][t] = that token's experts, highest score
// first) into a plan with `capacity_per_source` for every expert (-1: dropless). For tests
// and tools with hand-made routing.
RoutingPlan PlanFromChoices(const std::vector<std::vector<std::vector<int>>>& choices,
                            const Placement& placement, int64_t capacity_per_source,
                            int gpus_per_node = 0, bool drop_by_score = false);

// Micro-batch m of two: half of every count of `plan` (the first takes the odd one). The
// routing and its drops stay those of the whole step, so that a run with two-batch overlap
// and one without move the same tokens.
RoutingPlan HalfOfPlan(const RoutingPlan& plan, int m);

}  // namespace epsim

#endif  // EPSIM_SIM_WORKLOAD_ROUTING_PLAN_H_
