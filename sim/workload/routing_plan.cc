// epsim workload: routing plans (see routing_plan.h).
#include "sim/workload/routing_plan.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace epsim {
namespace {

// Which of a source's buffered assignments (T x k, token-major) survive capacity when the
// lowest router scores are dropped first. Scores follow pick order: a token's i-th pick
// scores below its earlier picks (successive sampling draws heavier experts first); ties
// go to the later token.
std::vector<char> KeepByScore(const std::vector<int>& buffered, int k,
                              const std::vector<int64_t>& capacity) {
  std::vector<char> keep(buffered.size(), 1);
  std::vector<std::vector<int>> by_expert(capacity.size());
  for (size_t i = 0; i < buffered.size(); ++i) by_expert[buffered[i]].push_back(static_cast<int>(i));
  for (size_t e = 0; e < capacity.size(); ++e) {
    std::vector<int>& mine = by_expert[e];
    if (capacity[e] < 0 || static_cast<int64_t>(mine.size()) <= capacity[e]) continue;
    std::sort(mine.begin(), mine.end(), [k](int a, int b) {
      return a % k != b % k ? a % k > b % k : a > b;
    });
    for (size_t j = 0; j < mine.size() - static_cast<size_t>(capacity[e]); ++j) keep[mine[j]] = 0;
  }
  return keep;
}

}  // namespace

int64_t RoutingPlan::ExpertInputTokens(int gpu) const {
  int64_t total = 0;
  for (const auto& entry : gpu_expert_tokens[gpu]) total += entry.second;
  return total;
}

PlanBuilder::PlanBuilder(const Placement& placement, int gpus_per_node, bool drop_by_score)
    : placement_(placement), drop_by_score_(drop_by_score),
      gpus_per_node_(gpus_per_node > 0 ? gpus_per_node : placement.num_gpus()),
      used_(placement.num_experts(), 0), to_gpu_(placement.num_gpus()),
      to_node_((placement.num_gpus() + gpus_per_node_ - 1) / gpus_per_node_), target_gpu_(placement.num_experts(), 0),
      target_node_(placement.num_experts(), 0), target_slot_(placement.num_experts(), 0) {
  plan_.num_gpus = placement.num_gpus();
  plan_.num_experts = placement.num_experts();
  plan_.expert_kept.assign(plan_.num_experts, 0);
  plan_.expert_dropped.assign(plan_.num_experts, 0);
  plan_.gpu_expert_tokens.resize(plan_.num_gpus);
  plan_.dispatch_tokens.resize(plan_.num_gpus);
  plan_.dispatch_pairs.resize(plan_.num_gpus);
  plan_.node_tokens.resize(plan_.num_gpus);
  plan_.source_dropped.assign(plan_.num_gpus, 0);
  plan_.source_tokens.assign(plan_.num_gpus, 0);
  for (int e = 0; e < placement.num_experts(); ++e) {
    replica_offset_.push_back(static_cast<int64_t>(replica_tokens_.size()));
    replica_tokens_.resize(replica_tokens_.size() + placement.Replicas(e).size(), 0);
  }
}

void PlanBuilder::BeginSource(int src, int num_tokens, std::vector<int64_t> capacity) {
  src_ = src;
  sources_.push_back(src);
  plan_.source_tokens[src] = num_tokens;
  capacity_ = std::move(capacity);
  std::fill(used_.begin(), used_.end(), 0);
  token_ = 0;
  // Where each expert's tokens from this source go: resolved once per source.
  for (int e = 0; e < placement_.num_experts(); ++e) {
    const int replica = placement_.ReplicaFor(e, src);
    target_gpu_[e] = placement_.Replicas(e)[replica];
    target_node_[e] = target_gpu_[e] / gpus_per_node_;
    target_slot_[e] = replica_offset_[e] + replica;
  }
}

void PlanBuilder::AddToken(const std::vector<int>& experts) {
  if (!drop_by_score_) return Accumulate(experts, nullptr);
  if (buffered_.empty()) top_k_ = static_cast<int>(experts.size());
  if (static_cast<int>(experts.size()) != top_k_) throw std::invalid_argument("tokens need equal top-k");
  buffered_.insert(buffered_.end(), experts.begin(), experts.end());
}

void PlanBuilder::Accumulate(const std::vector<int>& experts, const char* keep) {
  plan_.assignments += static_cast<int64_t>(experts.size());
  for (size_t i = 0; i < experts.size(); ++i) {
    const int e = experts[i];
    const bool over = keep != nullptr ? !keep[i] : capacity_[e] >= 0 && used_[e] >= capacity_[e];
    if (over) {
      ++plan_.expert_dropped[e];
      ++plan_.dropped;
      ++plan_.source_dropped[src_];
      continue;
    }
    ++used_[e];
    ++plan_.expert_kept[e];
    ++replica_tokens_[target_slot_[e]];
    DestinationCount& gpu = to_gpu_[target_gpu_[e]];
    if (gpu.pairs++ == 0) touched_.push_back(target_gpu_[e]);
    if (gpu.seen != token_) {
      gpu.seen = token_;
      ++gpu.tokens;
    }
    DestinationCount& node = to_node_[target_node_[e]];
    if (node.seen != token_) {
      if (node.seen < 0) touched_nodes_.push_back(target_node_[e]);
      node.seen = token_;
      ++node.tokens;
    }
  }
  ++token_;
}

void PlanBuilder::EndSource() {
  if (drop_by_score_ && !buffered_.empty()) {
    const size_t k = static_cast<size_t>(top_k_);
    const std::vector<char> keep = KeepByScore(buffered_, top_k_, capacity_);
    std::vector<int> one(k);
    for (size_t t = 0; t < buffered_.size() / k; ++t) {
      std::copy(buffered_.begin() + t * k, buffered_.begin() + (t + 1) * k, one.begin());
      Accumulate(one, keep.data() + t * k);
    }
    buffered_.clear();
  }
  std::sort(touched_.begin(), touched_.end());
  auto& row = plan_.dispatch_tokens[src_];
  auto& pairs = plan_.dispatch_pairs[src_];
  for (int dst : touched_) {
    row.emplace_back(dst, to_gpu_[dst].tokens);
    pairs.emplace_back(dst, to_gpu_[dst].pairs);
    to_gpu_[dst] = DestinationCount{};
  }
  touched_.clear();
  std::sort(touched_nodes_.begin(), touched_nodes_.end());
  auto& nodes = plan_.node_tokens[src_];
  for (const int node : touched_nodes_) {
    nodes.emplace_back(node, to_node_[node].tokens);
    to_node_[node] = DestinationCount{};
  }
  touched_nodes_.clear();
}

void PlanBuilder::Absorb(PlanBuilder&& part) {
  RoutingPlan& from = part.plan_;
  plan_.assignments += from.assignments;
  plan_.dropped += from.dropped;
  for (int e = 0; e < plan_.num_experts; ++e) {
    plan_.expert_kept[e] += from.expert_kept[e];
    plan_.expert_dropped[e] += from.expert_dropped[e];
  }
  for (size_t r = 0; r < replica_tokens_.size(); ++r) replica_tokens_[r] += part.replica_tokens_[r];
  for (const int src : part.sources_) {
    plan_.source_tokens[src] = from.source_tokens[src];
    plan_.source_dropped[src] = from.source_dropped[src];
    plan_.dispatch_tokens[src] = std::move(from.dispatch_tokens[src]);
    plan_.dispatch_pairs[src] = std::move(from.dispatch_pairs[src]);
    plan_.node_tokens[src] = std::move(from.node_tokens[src]);
    sources_.push_back(src);
  }
}

RoutingPlan PlanBuilder::Finish() {
  // The per-replica loads, experts in ascending order per GPU.
  for (int e = 0; e < placement_.num_experts(); ++e) {
    const std::vector<int>& gpus = placement_.Replicas(e);
    for (size_t r = 0; r < gpus.size(); ++r) {
      const int64_t tokens = replica_tokens_[replica_offset_[e] + r];
      if (tokens > 0) plan_.gpu_expert_tokens[gpus[r]].emplace_back(e, tokens);
    }
  }
  return std::move(plan_);
}

RoutingPlan PlanFromChoices(const std::vector<std::vector<std::vector<int>>>& choices,
                            const Placement& placement, int64_t capacity_per_source,
                            int gpus_per_node, bool drop_by_score) {
  PlanBuilder builder(placement, gpus_per_node, drop_by_score);
  const std::vector<int64_t> capacity(placement.num_experts(), capacity_per_source);
  for (int g = 0; g < static_cast<int>(choices.size()) && g < placement.num_gpus(); ++g) {
    builder.BeginSource(g, static_cast<int>(choices[g].size()), capacity);
    for (const auto& token : choices[g]) builder.AddToken(token);
    builder.EndSource();
  }
  return builder.Finish();
}

RoutingPlan HalfOfPlan(const RoutingPlan& plan, int m) {
  auto half = [m](int64_t n) { return m == 0 ? (n + 1) / 2 : n / 2; };
  RoutingPlan out = plan;
  for (int& tokens : out.source_tokens) tokens = static_cast<int>(half(tokens));
  for (auto* rows : {&out.gpu_expert_tokens, &out.dispatch_tokens, &out.dispatch_pairs, &out.node_tokens}) {
    for (auto& row : *rows) {
      for (auto& entry : row) entry.second = half(entry.second);
      row.erase(std::remove_if(row.begin(), row.end(), [](const auto& e) { return e.second == 0; }),
                row.end());
    }
  }
  return out;
}

}  // namespace epsim
