// epsim workload: the routing sampler (see sampler.h).
#include "sim/workload/sampler.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/parallel.h"
#include "sim/workload/random.h"

namespace epsim {
namespace {

// Per-expert weights of a spec (before the hot special case).
// `seed` already mixes in the drift epoch (SampleRouting), so popularity re-draws per epoch.
std::vector<double> ExpertWeights(const RoutingSpec& spec, int num_experts, uint64_t seed) {
  std::vector<double> weights(num_experts, 1.0);
  if (spec.kind == RoutingSpec::Kind::kZipf) {
    std::vector<int> order(num_experts);
    std::iota(order.begin(), order.end(), 0);
    Rng rng = StreamFor(seed, UINT32_MAX, UINT32_MAX);
    for (int i = num_experts - 1; i > 0; --i) std::swap(order[i], order[UniformInt(rng, i + 1)]);
    for (int rank = 0; rank < num_experts; ++rank)
      weights[order[rank]] = 1.0 / std::pow(rank + 1.0, spec.parameter);
  }
  return weights;
}

// Draws `k` distinct experts into `out` by successive weighted sampling without
// replacement. Rejection first (cheap), then an exact draw over what is left when the
// remaining mass is small, which gives the same distribution in bounded time.
void DrawDistinct(const AliasTable& table, const std::vector<double>& weights, int k,
                  Rng& rng, std::vector<int>& out, std::vector<char>& taken) {
  constexpr int kMaxRejections = 64;
  while (static_cast<int>(out.size()) < k) {
    int expert = -1;
    for (int attempt = 0; attempt < kMaxRejections; ++attempt) {
      int e = table.Draw(rng);
      if (!taken[e]) {
        expert = e;
        break;
      }
    }
    if (expert < 0) {
      double remaining = 0;
      for (size_t e = 0; e < weights.size(); ++e)
        if (!taken[e]) remaining += weights[e];
      double target = Uniform01(rng) * remaining;
      for (size_t e = 0; e < weights.size(); ++e) {
        if (taken[e]) continue;
        expert = static_cast<int>(e);
        target -= weights[e];
        if (target < 0) break;
      }
    }
    // Every expert taken: the distribution cannot give k distinct ones (ResolveInputs
    // refuses such scenarios; never write past `taken`).
    if (expert < 0) throw std::logic_error("fewer experts to draw from than top_k");
    taken[expert] = 1;
    out.push_back(expert);
  }
}

// Receives one step's tokens, source by source; each token's experts highest score first.
class TokenSink {
 public:
  virtual ~TokenSink() = default;
  virtual void BeginSource(int src, int num_tokens) = 0;
  virtual void Token(const std::vector<int>& experts) = 0;
  virtual void EndSource() = 0;
};

// SampleRouting's sink: capacity per (source, expert), following each source's own token
// count when counts vary.
class PlanSink : public TokenSink {
 public:
  PlanSink(const RoutingParams& params, const Placement& placement)
      : params_(params), placement_(placement), capacity_(ExpertCapacities(params, placement)),
        builder_(placement, params.gpus_per_node, params.drop_by_score && params.capacity_factor > 0) {}

  void BeginSource(int src, int num_tokens) override {
    if (params_.token_sigma > 0) {
      RoutingParams source_params = params_;
      source_params.tokens_per_gpu = num_tokens;
      capacity_ = ExpertCapacities(source_params, placement_);
    }
    builder_.BeginSource(src, num_tokens, capacity_);
  }
  void Token(const std::vector<int>& experts) override { builder_.AddToken(experts); }
  void EndSource() override { builder_.EndSource(); }
  void Absorb(PlanSink&& part) { builder_.Absorb(std::move(part.builder_)); }
  RoutingPlan Finish() { return builder_.Finish(); }

 private:
  const RoutingParams& params_;
  const Placement& placement_;
  std::vector<int64_t> capacity_;  // per expert, for the current source
  PlanBuilder builder_;
};

// SampleTokenChoices' sink: keeps every token.
class ChoiceSink : public TokenSink {
 public:
  explicit ChoiceSink(int num_gpus) : choices(num_gpus) {}
  void BeginSource(int src, int /*num_tokens*/) override { src_ = src; }
  void Token(const std::vector<int>& experts) override { choices[src_].push_back(experts); }
  void EndSource() override {}
  std::vector<std::vector<std::vector<int>>> choices;

 private:
  int src_ = 0;
};

// A per-token trace. The scenario's tokens, source by source, take the file step's N tokens
// in order and wrap around: source g's token t is the file's (tokens of sources before g + t)
// mod N-th, (g T + t) mod N with equal counts, so a trace of a smaller run drives a larger.
void ReplayTrace(const RoutingParams& params, const Placement& placement, int step,
                 const std::vector<int>& source_tokens, int begin, int end, TokenSink& sink) {
  const RoutingSpec& spec = params.spec;
  const int k = spec.trace_top_k;
  if (params.top_k != k) {
    throw std::invalid_argument("the routing trace has " + std::to_string(k) +
                                " experts per token, the model top_k " + std::to_string(params.top_k));
  }
  if (params.node_limit > 0 && params.gpus_per_node > 0)
    throw std::invalid_argument("a per-token routing trace fixes each token's experts: a node limit cannot apply");
  if (params.balance > 0 || params.burst_every > 0)
    throw std::invalid_argument("a per-token routing trace fixes each token's experts: balance and bursts cannot apply");
  const int64_t file_step = step % spec.TraceSteps();
  const int64_t first = spec.trace_step_begin[file_step];
  const int64_t count = spec.trace_step_begin[file_step + 1] - first;
  std::vector<int> token(k);
  // The scenario's token index over all sources.
  int64_t position = std::accumulate(source_tokens.begin(), source_tokens.begin() + begin, int64_t{0});
  for (int g = begin; g < end; ++g) {
    sink.BeginSource(g, source_tokens[g]);
    for (int t = 0; t < source_tokens[g]; ++t, ++position) {
      const int32_t* experts = spec.trace_choices.data() + (first + position % count) * k;
      for (int i = 0; i < k; ++i) {
        if (experts[i] >= placement.num_experts()) {
          throw std::invalid_argument("the routing trace names expert " + std::to_string(experts[i]) +
                                      " of " + std::to_string(placement.num_experts()));
        }
        token[i] = experts[i];
      }
      sink.Token(token);
    }
    sink.EndSource();
  }
}

// What one step's token choices are drawn from.
struct StepDistribution {
  std::vector<double> weights;  // per expert (the hot expert 0: it is drawn separately)
  bool hot = false;             // routing hot:SHARE
  int hot_expert = 0;
  double hot_probability = 0;   // that a token includes the hot expert: SHARE * k
  int burst_expert = -1;        // this step's burst (BurstExpert), or -1
  double burst_share = 0;
};

// The expert weights of step `step`: the spec's (or the trace's) weights, pulled toward
// uniform by the balance, with the hot expert set apart.
// The seed of a layer's popularity and choices: the scenario's for layer 0.
uint64_t LayerSeed(const RoutingParams& params) {
  return params.seed ^ (static_cast<uint64_t>(params.layer) * 0xD1B54A32D192ED03ull);
}

StepDistribution Distribution(const RoutingParams& params, int num_experts, int step) {
  StepDistribution d;
  d.hot = params.spec.kind == RoutingSpec::Kind::kHot;
  // Popularity (Zipf permutation, hot expert) is redrawn each drift epoch; epoch 0 keeps the
  // plain seed so that runs without drift are unchanged.
  const uint64_t popularity_seed = LayerSeed(params) ^ (static_cast<uint64_t>(params.epoch) * 0x9E3779B97F4A7C15ull);
  d.weights = params.spec.kind == RoutingSpec::Kind::kTrace
                  ? params.spec.trace_weights[static_cast<size_t>(step) % params.spec.trace_weights.size()]
                  : ExpertWeights(params.spec, num_experts, popularity_seed);
  if (static_cast<int>(d.weights.size()) != num_experts)
    throw std::invalid_argument("routing weights do not match the number of experts");
  if (params.balance > 0 && !d.hot) {
    const double total = std::accumulate(d.weights.begin(), d.weights.end(), 0.0);
    for (double& w : d.weights) w = (1 - params.balance) * w / total + params.balance / num_experts;
  }
  if (d.hot) {
    // Each token includes the hot expert (a seeded choice) with probability SHARE * k, so it
    // receives SHARE of all assignments; the rest are drawn from the others.
    Rng rng = StreamFor(popularity_seed, UINT32_MAX, UINT32_MAX - 1);
    d.hot_expert = UniformInt(rng, num_experts);
    // Balance pulls the hot share toward the uniform 1 / E.
    const double share = (1 - params.balance) * params.spec.parameter + params.balance / num_experts;
    d.hot_probability = share * params.top_k;
    if (d.hot_probability > 1.0 + 1e-12)
      throw std::invalid_argument("hot share exceeds 1/top_k: a token picks an expert at most once");
    d.weights[d.hot_expert] = 0;
  }
  d.burst_expert = BurstExpert(params, num_experts, step);
  d.burst_share = d.burst_expert >= 0 ? params.burst_share : 0;
  return d;
}

// Draws a token's experts by successive weighted sampling from an alias table, with the
// hot expert and a burst expert drawn first, each by its own probability.
class TokenChooser {
 public:
  TokenChooser(StepDistribution d, int top_k) : d_(std::move(d)), top_k_(top_k), taken_(d_.weights.size(), 0) {
    // A burst, only on burst steps so that other steps draw exactly as without bursts. Expert
    // b joins a token with probability k s_b, where s_b = (1 - S) p_b + S is its share of the
    // assignments; the token's other picks come from the other experts as before, whose
    // shares all scale by (1 - S).
    if (d_.burst_expert >= 0) {
      const int b = d_.burst_expert;
      // p_b: b's share without the burst: the hot share, or its part of what the hot expert leaves.
      const double hot_share = d_.hot ? d_.hot_probability / top_k : 0;
      const double rest = std::accumulate(d_.weights.begin(), d_.weights.end(), 0.0);  // hot excluded
      const double base = d_.hot && b == d_.hot_expert ? hot_share
                          : rest > 0                   ? (1 - hot_share) * d_.weights[b] / rest
                                                       : 0;
      burst_probability_ = std::min(1.0, top_k * ((1 - d_.burst_share) * base + d_.burst_share));
      if (d_.hot) {
        // The hot expert keeps (1 - S) of its share, unless it is the one bursting; with
        // top-1 it can only join the tokens the burst expert left free.
        d_.hot_probability = b == d_.hot_expert ? 0 : d_.hot_probability * (1 - d_.burst_share);
        if (top_k == 1)
          d_.hot_probability = burst_probability_ < 1 ? d_.hot_probability / (1 - burst_probability_) : 0;
      }
      d_.weights[b] = 0;  // drawn separately
    }
    table_ = std::make_unique<AliasTable>(d_.weights);
  }

  void Choose(Rng& rng, std::vector<int>& token) {
    const int burst = d_.burst_expert;
    if (burst >= 0) {
      if (Uniform01(rng) < burst_probability_) token.push_back(burst);
      taken_[burst] = 1;  // never drawn again in this token
    }
    if (d_.hot && static_cast<int>(token.size()) < top_k_ && Uniform01(rng) < d_.hot_probability) {
      token.push_back(d_.hot_expert);
      taken_[d_.hot_expert] = 1;
    }
    if (d_.hot) taken_[d_.hot_expert] = 1;  // never drawn again in this token
    DrawDistinct(*table_, d_.weights, top_k_, rng, token, taken_);
    for (int e : token) taken_[e] = 0;
    if (d_.hot) taken_[d_.hot_expert] = 0;
    if (burst >= 0) taken_[burst] = 0;
  }

 private:
  StepDistribution d_;
  int top_k_;
  double burst_probability_ = 0;
  std::unique_ptr<AliasTable> table_;
  std::vector<char> taken_;
};

// Node-limited routing (at most M nodes per token, as group-limited top-k): a token first
// draws M distinct nodes weighted by the routing mass of the experts they hold, then its
// experts among those nodes' experts. The hot expert and a burst are folded into the weights.
class NodeLimitedChooser {
 public:
  NodeLimitedChooser(const StepDistribution& d, const RoutingParams& params, const Placement& placement)
      : top_k_(params.top_k) {
    const int num_experts = placement.num_experts();
    const int nodes = (placement.num_gpus() + params.gpus_per_node - 1) / params.gpus_per_node;
    node_experts_.resize(nodes);
    node_weights_.assign(nodes, 0.0);
    weights_ = d.weights;
    if (d.hot) {  // the hot expert's weight that gives it SHARE of the draws
      double others = std::accumulate(d.weights.begin(), d.weights.end(), 0.0);
      weights_[d.hot_expert] = others * params.spec.parameter / (1 - params.spec.parameter);
    }
    if (d.burst_expert >= 0) {  // (1 - S) of every expert's mass, plus S for the burst expert
      const double total = std::accumulate(weights_.begin(), weights_.end(), 0.0);
      for (double& w : weights_) w *= (1 - d.burst_share) / total;
      weights_[d.burst_expert] += d.burst_share;
    }
    for (int e = 0; e < num_experts; ++e) {
      // An expert's node is where its copies are: all on one node (contiguous placement,
      // hierarchical EPLB), else a token could not be held to its nodes.
      const std::vector<int>& gpus = placement.Replicas(e);
      const int node = gpus[0] / params.gpus_per_node;
      for (int g : gpus) {
        if (g / params.gpus_per_node != node) {
          throw std::invalid_argument("a node limit needs every copy of an expert in one node (expert " +
                                      std::to_string(e) + " has copies on nodes " + std::to_string(node) +
                                      " and " + std::to_string(g / params.gpus_per_node) + ")");
        }
      }
      node_experts_[node].push_back(e);
      node_weights_[node] += weights_[e];
    }
    nodes_per_token_ = std::min<int>(params.node_limit, nodes);
    std::vector<size_t> sizes;
    for (const auto& experts : node_experts_) sizes.push_back(experts.size());
    std::sort(sizes.rbegin(), sizes.rend());
    size_t most = 0;
    for (int i = 0; i < nodes_per_token_; ++i) most += sizes[i];
    if (most < static_cast<size_t>(params.top_k))
      throw std::invalid_argument("top_k exceeds the experts of node_limit nodes");
    node_table_ = std::make_unique<AliasTable>(node_weights_);
    node_taken_.assign(nodes, 0);
  }

  void Choose(Rng& rng, std::vector<int>& token) {
    chosen_nodes_.clear();
    DrawDistinct(*node_table_, node_weights_, nodes_per_token_, rng, chosen_nodes_, node_taken_);
    for (int n : chosen_nodes_) node_taken_[n] = 0;
    candidates_.clear();
    candidate_weights_.clear();
    for (int n : chosen_nodes_) {
      for (int e : node_experts_[n]) {
        candidates_.push_back(e);
        candidate_weights_.push_back(weights_[e]);
      }
    }
    // k distinct among the candidates, successive weighted sampling (linear draws).
    for (int pick = 0; pick < top_k_; ++pick) {
      double total = 0;
      for (double w : candidate_weights_) total += w;
      double target = Uniform01(rng) * total;
      size_t chosen = 0;
      for (size_t c = 0; c < candidates_.size(); ++c) {
        if (candidate_weights_[c] <= 0) continue;
        chosen = c;
        target -= candidate_weights_[c];
        if (target < 0) break;
      }
      token.push_back(candidates_[chosen]);
      candidate_weights_[chosen] = 0;
    }
  }

 private:
  int top_k_;
  int nodes_per_token_ = 0;
  std::vector<double> weights_;  // per expert, hot and burst folded in
  std::vector<std::vector<int>> node_experts_;
  std::vector<double> node_weights_;
  std::unique_ptr<AliasTable> node_table_;
  std::vector<char> node_taken_;
  std::vector<int> chosen_nodes_, candidates_;
  std::vector<double> candidate_weights_;
};

// The tokens of step `step` of sources [begin, end), each drawn by `chooser` from the
// source's own stream.
template <typename Chooser>
void DrawTokens(const RoutingParams& params, int step, const std::vector<int>& source_tokens,
                int begin, int end, Chooser& chooser, TokenSink& sink) {
  std::vector<int> token;
  for (int g = begin; g < end; ++g) {
    Rng rng = StreamFor(LayerSeed(params), static_cast<uint64_t>(step), g);
    sink.BeginSource(g, source_tokens[g]);
    for (int t = 0; t < source_tokens[g]; ++t) {
      token.clear();
      chooser.Choose(rng, token);
      sink.Token(token);
    }
    sink.EndSource();
  }
}

// Draws the tokens of step `step` (see SampleRouting) of sources [begin, end) into `sink`.
void SampleTokens(const RoutingParams& params, const Placement& placement, int step,
                  const std::vector<int>& source_tokens, int begin, int end, TokenSink& sink) {
  const int num_experts = placement.num_experts();
  if (params.top_k > num_experts) throw std::invalid_argument("top_k exceeds the number of experts");
  if (params.spec.kind == RoutingSpec::Kind::kTrace && params.spec.TraceSteps() == 0)
    throw std::invalid_argument("the routing trace is not loaded (LoadRoutingTrace)");
  if (params.spec.IsTokenTrace()) return ReplayTrace(params, placement, step, source_tokens, begin, end, sink);
  StepDistribution distribution = Distribution(params, num_experts, step);
  if (params.node_limit > 0 && params.gpus_per_node > 0) {
    NodeLimitedChooser chooser(distribution, params, placement);
    DrawTokens(params, step, source_tokens, begin, end, chooser, sink);
  } else {
    TokenChooser chooser(std::move(distribution), params.top_k);
    DrawTokens(params, step, source_tokens, begin, end, chooser, sink);
  }
}

}  // namespace

int64_t CapacityPerSource(const RoutingParams& params, int num_experts) {
  if (params.capacity_factor <= 0) return -1;
  const double exact = params.capacity_factor * params.tokens_per_gpu * params.top_k / num_experts;
  // Guard against 1.25 * 4096 * 8 / 256 = 160.00000000000003 style rounding.
  return static_cast<int64_t>(std::ceil(exact - 1e-9 * exact));
}

std::vector<int> TokensPerSource(const RoutingParams& params, int num_gpus, int step) {
  std::vector<int> tokens(num_gpus, params.tokens_per_gpu);
  if (params.token_sigma <= 0) return tokens;
  const double sigma = params.token_sigma;
  for (int g = 0; g < num_gpus; ++g) {
    Rng rng = StreamFor(params.seed ^ 0x746f6b656e73ull, static_cast<uint64_t>(step), g);
    // Box-Muller from two uniforms in (0, 1].
    const double u1 = 1.0 - Uniform01(rng), u2 = Uniform01(rng);
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
    const double t = params.tokens_per_gpu * std::exp(sigma * z - sigma * sigma / 2);
    tokens[g] = static_cast<int>(std::clamp(std::llround(t), 1LL, static_cast<long long>(1 << 24)));
  }
  return tokens;
}

std::vector<int64_t> ExpertCapacities(const RoutingParams& params, const Placement& placement) {
  const int num_experts = placement.num_experts();
  int64_t total_copies = 0;
  for (int e = 0; e < num_experts; ++e) total_copies += placement.Replicas(e).size();
  // Per copy: ceil(cf * T * k / copies); an expert with c copies holds c of them. With one
  // copy per expert this is Megatron's ceil(cf * T * k / E).
  const int64_t per_copy = CapacityPerSource(params, static_cast<int>(total_copies));
  std::vector<int64_t> capacity(num_experts, -1);
  if (per_copy >= 0)
    for (int e = 0; e < num_experts; ++e)
      capacity[e] = per_copy * static_cast<int64_t>(placement.Replicas(e).size());
  return capacity;
}

int BurstExpert(const RoutingParams& params, int num_experts, int64_t step) {
  if (params.burst_every <= 0 || num_experts < 1 || (step + 1) % params.burst_every != 0) return -1;
  const int64_t burst = (step + 1) / params.burst_every;  // 1 for the first burst, 2, ...
  Rng rng = StreamFor(params.seed ^ 0x6275727374ull /* "burst" */, static_cast<uint64_t>(burst), UINT32_MAX - 2);
  return UniformInt(rng, num_experts);
}

RoutingPlan SampleRouting(const RoutingParams& params, const Placement& placement, int step) {
  const int gpus = placement.num_gpus();
  const std::vector<int> tokens = TokensPerSource(params, gpus, step);
  // Each source draws from its own stream, so the sources split into parts, a sink each,
  // give the plan of one pass over all of them, on any number of threads.
  const int parts = std::max(1, std::min(gpus, WorkerThreads()));
  std::vector<std::unique_ptr<PlanSink>> sinks(parts);
  ParallelFor(parts, [&](int part) {
    const auto [begin, end] = PartRange(gpus, parts, part);
    sinks[part] = std::make_unique<PlanSink>(params, placement);
    SampleTokens(params, placement, step, tokens, static_cast<int>(begin), static_cast<int>(end), *sinks[part]);
  });
  for (int part = 1; part < parts; ++part) sinks[0]->Absorb(std::move(*sinks[part]));
  return sinks[0]->Finish();
}

std::vector<std::vector<std::vector<int>>> SampleTokenChoices(const RoutingParams& params,
                                                              const Placement& placement,
                                                              int step) {
  ChoiceSink sink(placement.num_gpus());
  SampleTokens(params, placement, step, TokensPerSource(params, placement.num_gpus(), step), 0,
               placement.num_gpus(), sink);
  return std::move(sink.choices);
}

}  // namespace epsim
