// epsim: routing sampler and plan (see routing.h).
#include "sim/routing.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

namespace epsim {
namespace {

// Uniform double in [0, 1) from 53 random bits: the same on every standard library.
// xoshiro256** (Blackman and Vigna): small, fast, and the same on every platform; seeded
// through std::seed_seq so that nearby (seed, step, gpu) give unrelated streams.
class Rng {
 public:
  explicit Rng(std::seed_seq& seq) {
    uint32_t words[8];
    seq.generate(words, words + 8);
    for (int i = 0; i < 4; ++i) state_[i] = (uint64_t{words[2 * i]} << 32) | words[2 * i + 1];
    if ((state_[0] | state_[1] | state_[2] | state_[3]) == 0) state_[0] = 1;
  }
  uint64_t operator()() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

double Uniform01(Rng& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Uniform integer in [0, n) by rejection, the same on every standard library.
int UniformInt(Rng& rng, int n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % static_cast<uint64_t>(n);
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return static_cast<int>(x % static_cast<uint64_t>(n));
}

Rng StreamFor(uint64_t seed, uint64_t step, uint64_t gpu) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(step), static_cast<uint32_t>(gpu), 0x65707369u};
  return Rng(seq);
}

// Walker/Vose alias table: O(1) draws from a discrete distribution.
class AliasTable {
 public:
  explicit AliasTable(const std::vector<double>& weights) {
    const int n = static_cast<int>(weights.size());
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    prob_.assign(n, 0.0);
    alias_.assign(n, 0);
    std::vector<double> scaled(n);
    std::vector<int> small, large;
    for (int i = 0; i < n; ++i) {
      scaled[i] = weights[i] * n / total;
      (scaled[i] < 1.0 ? small : large).push_back(i);
    }
    while (!small.empty() && !large.empty()) {
      int s = small.back(), l = large.back();
      small.pop_back();
      prob_[s] = scaled[s];
      alias_[s] = l;
      scaled[l] = (scaled[l] + scaled[s]) - 1.0;
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (int i : large) prob_[i] = 1.0;
    for (int i : small) prob_[i] = 1.0;
  }
  // One 64-bit draw: the high 32 bits pick the column (multiply-shift, bias below 2^-32
  // per column for any realistic size), the low 32 bits decide between it and its alias.
  int Draw(Rng& rng) const {
    const uint64_t x = rng();
    const int i = static_cast<int>(((x >> 32) * prob_.size()) >> 32);
    return static_cast<double>(x & 0xffffffffu) * 0x1.0p-32 < prob_[i] ? i : alias_[i];
  }

 private:
  std::vector<double> prob_;
  std::vector<int> alias_;
};

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
    taken[expert] = 1;
    out.push_back(expert);
  }
}

// Accumulates the tokens of one source GPU into a plan.
class SourceAccumulator {
 public:
  // `capacity`: per expert per source GPU, -1 for none.
  SourceAccumulator(RoutingPlan& plan, const Placement& placement,
                    std::vector<int64_t> capacity, int gpus_per_node)
      : plan_(plan), placement_(placement), capacity_(std::move(capacity)),
        gpus_per_node_(gpus_per_node > 0 ? gpus_per_node : placement.num_gpus()),
        used_(placement.num_experts(), 0), dst_tokens_(placement.num_gpus(), 0),
        dst_pairs_(placement.num_gpus(), 0), dst_seen_(placement.num_gpus(), -1),
        node_tokens_((placement.num_gpus() + gpus_per_node_ - 1) / gpus_per_node_, 0),
        node_seen_(node_tokens_.size(), -1), target_gpu_(placement.num_experts(), 0),
        target_slot_(placement.num_experts(), 0) {
    for (int e = 0; e < placement.num_experts(); ++e) {
      replica_offset_.push_back(static_cast<int64_t>(replica_tokens_.size()));
      replica_tokens_.resize(replica_tokens_.size() + placement.Replicas(e).size(), 0);
    }
  }

  void SetCapacity(std::vector<int64_t> capacity) { capacity_ = std::move(capacity); }

  void Begin(int src) {
    src_ = src;
    std::fill(used_.begin(), used_.end(), 0);
    token_ = 0;
    // Where each expert's tokens from this source go: resolved once per source.
    for (int e = 0; e < placement_.num_experts(); ++e) {
      const int replica = placement_.ReplicaFor(e, src);
      target_gpu_[e] = placement_.Replicas(e)[replica];
      target_slot_[e] = replica_offset_[e] + replica;
    }
  }

  // Adds one token. Without `keep`, capacity drops by position (the token's assignments
  // beyond its experts' capacity); with it, keep[i] says whether experts[i] is kept.
  void AddToken(const std::vector<int>& experts, const char* keep = nullptr) {
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
      const int dst = target_gpu_[e];
      if (dst_pairs_[dst]++ == 0) touched_.push_back(dst);
      if (dst_seen_[dst] != token_) {
        dst_seen_[dst] = token_;
        ++dst_tokens_[dst];
      }
      const int node = dst / gpus_per_node_;
      if (node_seen_[node] != token_) {
        node_seen_[node] = token_;
        ++node_tokens_[node];
      }
    }
    ++token_;
  }

  void End() {
    std::sort(touched_.begin(), touched_.end());
    auto& row = plan_.dispatch_tokens[src_];
    auto& pairs = plan_.dispatch_pairs[src_];
    for (int dst : touched_) {
      row.emplace_back(dst, dst_tokens_[dst]);
      pairs.emplace_back(dst, dst_pairs_[dst]);
      dst_tokens_[dst] = 0;
      dst_pairs_[dst] = 0;
      dst_seen_[dst] = -1;
    }
    touched_.clear();
    auto& nodes = plan_.node_tokens[src_];
    for (size_t node = 0; node < node_tokens_.size(); ++node) {
      if (node_tokens_[node] > 0) nodes.emplace_back(static_cast<int>(node), node_tokens_[node]);
      node_tokens_[node] = 0;
      node_seen_[node] = -1;
    }
  }

  // Moves the per-replica loads into the plan, experts in ascending order per GPU.
  void Flush() {
    for (int e = 0; e < placement_.num_experts(); ++e) {
      const std::vector<int>& gpus = placement_.Replicas(e);
      for (size_t r = 0; r < gpus.size(); ++r) {
        const int64_t tokens = replica_tokens_[replica_offset_[e] + r];
        if (tokens > 0) plan_.gpu_expert_tokens[gpus[r]].emplace_back(e, tokens);
      }
    }
  }

 private:

  RoutingPlan& plan_;
  const Placement& placement_;
  std::vector<int64_t> capacity_;
  int gpus_per_node_;
  int src_ = 0;
  int64_t token_ = 0;
  std::vector<int64_t> used_;
  std::vector<int64_t> dst_tokens_;  // per destination GPU: tokens (deduplicated)
  std::vector<int64_t> dst_pairs_;   // per destination GPU: (token, expert) pairs
  std::vector<int64_t> dst_seen_;
  std::vector<int64_t> node_tokens_;  // per destination node: tokens (deduplicated)
  std::vector<int64_t> node_seen_;
  std::vector<int> target_gpu_;       // per expert: the GPU serving the current source
  std::vector<int64_t> target_slot_;  // per expert: its index into replica_tokens_
  std::vector<int> touched_;
  std::vector<int64_t> replica_offset_;  // per expert: first index in replica_tokens_
  std::vector<int64_t> replica_tokens_;  // per (expert, replica): assignments kept
};

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

RoutingPlan EmptyPlan(const Placement& placement) {
  RoutingPlan plan;
  plan.num_gpus = placement.num_gpus();
  plan.num_experts = placement.num_experts();
  plan.expert_kept.assign(plan.num_experts, 0);
  plan.expert_dropped.assign(plan.num_experts, 0);
  plan.gpu_expert_tokens.resize(plan.num_gpus);
  plan.dispatch_tokens.resize(plan.num_gpus);
  plan.dispatch_pairs.resize(plan.num_gpus);
  plan.node_tokens.resize(plan.num_gpus);
  plan.source_dropped.assign(plan.num_gpus, 0);
  plan.source_tokens.assign(plan.num_gpus, 0);
  return plan;
}

}  // namespace

RoutingSpec RoutingSpec::Parse(const std::string& text) {
  RoutingSpec spec;
  if (text == "uniform") return spec;
  if (text.rfind("trace:", 0) == 0) {
    spec.kind = Kind::kTrace;
    spec.trace_path = text.substr(6);
    if (spec.trace_path.empty()) throw std::invalid_argument("expected a file after 'trace:'");
    return spec;
  }
  auto colon = text.find(':');
  std::string kind = text.substr(0, colon);
  if (colon == std::string::npos || (kind != "zipf" && kind != "hot"))
    throw std::invalid_argument("expected uniform, zipf:EXPONENT, hot:SHARE or trace:FILE");
  std::string number = text.substr(colon + 1);
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (number.empty() || *end != '\0' || !std::isfinite(value))
    throw std::invalid_argument("expected a number after '" + kind + ":'");
  if (kind == "zipf") {
    if (value < 0 || value > 20) throw std::invalid_argument("Zipf exponent must be in [0, 20]");
    spec.kind = Kind::kZipf;
  } else {
    if (value <= 0 || value >= 1) throw std::invalid_argument("hot share must be in (0, 1)");
    spec.kind = Kind::kHot;
  }
  spec.parameter = value;
  return spec;
}

std::string RoutingSpec::ToString() const {
  char buffer[64];
  switch (kind) {
    case Kind::kUniform:
      return "uniform";
    case Kind::kZipf:
      std::snprintf(buffer, sizeof(buffer), "zipf:%g", parameter);
      return buffer;
    case Kind::kHot:
      std::snprintf(buffer, sizeof(buffer), "hot:%g", parameter);
      return buffer;
    case Kind::kTrace:
      return "trace:" + trace_path;
  }
  return "?";
}

int RoutingSpec::TraceSteps() const {
  if (kind != Kind::kTrace) return 0;
  if (trace_top_k > 0) return trace_step_begin.empty() ? 0 : static_cast<int>(trace_step_begin.size() - 1);
  return static_cast<int>(trace_weights.size());
}

namespace {

constexpr char kCountsHeader[] = "step,expert,tokens";
constexpr char kChoicesHeader[] = "step,gpu,token,experts";
// Step x expert counts a counts trace may hold (128 MB of doubles): a 16 MiB file of one-row
// steps could otherwise ask for a million steps of every expert.
constexpr int64_t kMaxTraceCells = int64_t{1} << 24;

// The whole file, refusing folders and anything over kMaxRoutingTraceBytes (pipes and
// devices have no size, so reading stops past the limit), as LoadYamlFile does.
std::string ReadTraceText(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0)
    throw std::invalid_argument(std::string("cannot open file: ") + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) throw std::invalid_argument("is a folder, not a file");
  const std::string too_large = "too large for a routing trace (more than " +
                                std::to_string(kMaxRoutingTraceBytes) + " bytes)";
  if (S_ISREG(info.st_mode) && info.st_size > kMaxRoutingTraceBytes) throw std::invalid_argument(too_large);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("cannot open file");
  std::string text;
  char chunk[65536];
  while (in.read(chunk, sizeof(chunk)) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > static_cast<size_t>(kMaxRoutingTraceBytes)) throw std::invalid_argument(too_large);
  }
  if (in.bad()) throw std::invalid_argument("cannot read file");
  return text;
}

// Splits text into lines without their \n or \r\n.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

std::vector<std::string> SplitCells(const std::string& line) {
  std::vector<std::string> cells;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    cells.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return cells;
    start = comma + 1;
  }
}

// "line N: COLUMN: 'VALUE': why": what the scenario loader prefixes with the path.
[[noreturn]] void Bad(int line, const std::string& column, const std::string& value, const std::string& why) {
  throw std::invalid_argument("line " + std::to_string(line) + ": " + column + ": '" + value + "': " + why);
}

// A row as quoted in an error: at most 60 characters.
std::string RowText(const std::string& row) { return row.size() > 60 ? row.substr(0, 57) + "..." : row; }

int64_t WholeCell(int line, const std::string& cell, const char* column, int64_t max_value) {
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(cell.c_str(), &end, 10);
  if (cell.empty() || *end != '\0' || errno == ERANGE || value < 0 || value > max_value)
    Bad(line, column, cell, "expected a whole number in [0, " + std::to_string(max_value) + "]");
  return value;
}

void LoadCounts(RoutingSpec& spec, const std::vector<std::string>& lines, int num_experts) {
  spec.trace_weights.clear();
  for (size_t i = 1; i < lines.size(); ++i) {
    const int line = static_cast<int>(i + 1);
    if (lines[i].empty()) continue;
    const std::vector<std::string> cells = SplitCells(lines[i]);
    if (cells.size() > 3) Bad(line, "row", RowText(lines[i]), "expected 3 columns (step,expert,tokens)");
    const std::string& step_text = cells[0];
    const std::string expert_text = cells.size() > 1 ? cells[1] : "";
    const std::string tokens_text = cells.size() > 2 ? cells[2] : "";
    const auto step = WholeCell(line, step_text, "step", 1'000'000);
    const auto expert = WholeCell(line, expert_text, "expert", num_experts - 1);
    const auto tokens = WholeCell(line, tokens_text, "tokens", int64_t{1} << 40);
    const auto steps = static_cast<int64_t>(spec.trace_weights.size());
    if (step > steps) Bad(line, "step", step_text, "steps must be numbered from 0 without gaps");
    if (step == steps) {
      if ((steps + 1) * num_experts > kMaxTraceCells)
        Bad(line, "step", step_text, "too many steps for " + std::to_string(num_experts) +
                                         " experts (at most " + std::to_string(kMaxTraceCells) +
                                         " step x expert counts)");
      spec.trace_weights.emplace_back(num_experts, 0.0);
    }
    spec.trace_weights[step][expert] += static_cast<double>(tokens);
  }
  if (spec.trace_weights.empty()) throw std::invalid_argument("no rows after the header");
  for (size_t step = 0; step < spec.trace_weights.size(); ++step) {
    double total = 0;
    for (double w : spec.trace_weights[step]) total += w;
    if (total <= 0) throw std::invalid_argument("step " + std::to_string(step) + " has no tokens");
  }
}

void LoadChoices(RoutingSpec& spec, const std::vector<std::string>& lines, int num_experts, int top_k) {
  if (top_k < 1) throw std::invalid_argument("a per-token trace needs the model's top_k");
  spec.trace_top_k = top_k;
  spec.trace_choices.clear();
  spec.trace_step_begin.clear();
  int64_t previous_gpu = -1, previous_token = -1;
  std::vector<char> seen(num_experts, 0);
  std::vector<int32_t> token;
  for (size_t i = 1; i < lines.size(); ++i) {
    const int line = static_cast<int>(i + 1);
    if (lines[i].empty()) continue;
    const std::vector<std::string> cells = SplitCells(lines[i]);
    if (cells.size() != 4) {
      Bad(line, "row", RowText(lines[i]),
          std::string("expected 4 columns (") + kChoicesHeader + "; experts separated by spaces), found " +
              std::to_string(cells.size()));
    }
    const int64_t step = WholeCell(line, cells[0], "step", 1'000'000);
    const int64_t gpu = WholeCell(line, cells[1], "gpu", 1 << 20);
    const int64_t position = WholeCell(line, cells[2], "token", 1 << 30);
    // Rows come grouped by step, each step's tokens in (gpu, token) order: the order in which
    // a larger run takes them, and how repeats are caught.
    const int64_t steps = static_cast<int64_t>(spec.trace_step_begin.size());
    if (step > steps || step < steps - 1)
      Bad(line, "step", cells[0], "rows must be ordered by step, numbered from 0 without gaps");
    if (step == steps) {
      spec.trace_step_begin.push_back(static_cast<int64_t>(spec.trace_choices.size() / top_k));
    } else if (gpu < previous_gpu) {
      Bad(line, "gpu", cells[1], "rows of a step must be ordered by gpu, then token");
    } else if (gpu == previous_gpu && position <= previous_token) {
      Bad(line, "token", cells[2], position == previous_token
                                       ? "repeats the previous row's token (each token once per step)"
                                       : "rows of a step must be ordered by gpu, then token");
    }
    previous_gpu = gpu;
    previous_token = position;
    // The experts: ids separated by spaces, optionally quoted as a whole.
    std::string list = cells[3];
    if (!list.empty() && list.front() == '"') {
      if (list.size() < 2 || list.back() != '"') Bad(line, "experts", cells[3], "unterminated quote");
      list = list.substr(1, list.size() - 2);
    }
    token.clear();
    std::stringstream ids(list);
    std::string id;
    while (ids >> id) {
      char* end = nullptr;
      errno = 0;
      const long long expert = std::strtoll(id.c_str(), &end, 10);
      if (*end != '\0' || errno == ERANGE || expert < 0 || expert >= num_experts) {
        Bad(line, "experts", id, "expected an expert id in [0, " + std::to_string(num_experts - 1) +
                                     "] (model.experts = " + std::to_string(num_experts) + ")");
      }
      if (seen[expert]) {
        Bad(line, "experts", cells[3], "expert " + id + " appears twice (a token's experts are distinct)");
      }
      seen[expert] = 1;
      token.push_back(static_cast<int32_t>(expert));
    }
    for (int32_t e : token) seen[e] = 0;
    if (static_cast<int>(token.size()) != top_k) {
      Bad(line, "experts", cells[3], "expected " + std::to_string(top_k) + " experts (model.top_k), found " +
                                         std::to_string(token.size()));
    }
    spec.trace_choices.insert(spec.trace_choices.end(), token.begin(), token.end());
  }
  if (spec.trace_step_begin.empty()) throw std::invalid_argument("no rows after the header");
  spec.trace_step_begin.push_back(static_cast<int64_t>(spec.trace_choices.size() / top_k));
}

}  // namespace

void LoadRoutingTrace(RoutingSpec& spec, const std::string& path, int num_experts, int top_k) {
  if (num_experts < 1) throw std::invalid_argument("needs at least one expert");
  std::vector<std::string> lines = Lines(ReadTraceText(path));
  if (lines.empty() || (lines.size() == 1 && lines[0].empty()))
    throw std::invalid_argument(std::string("line 1: empty file: expected the header '") + kCountsHeader +
                                "' (expert counts) or '" + kChoicesHeader + "' (per-token choices)");
  std::string header = lines[0];
  if (header.rfind("\xEF\xBB\xBF", 0) == 0) header.erase(0, 3);  // a UTF-8 byte-order mark
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.pop_back();
  spec.kind = RoutingSpec::Kind::kTrace;
  if (spec.trace_path.empty()) spec.trace_path = path;
  spec.trace_weights.clear();
  spec.trace_top_k = 0;
  spec.trace_choices.clear();
  spec.trace_step_begin.clear();
  if (header == kCountsHeader) {
    LoadCounts(spec, lines, num_experts);
  } else if (header == kChoicesHeader) {
    LoadChoices(spec, lines, num_experts, top_k);
  } else {
    Bad(1, "header", header, std::string("expected '") + kCountsHeader + "' (expert counts) or '" +
                                 kChoicesHeader + "' (per-token choices)");
  }
}

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

int64_t RoutingPlan::ExpertInputTokens(int gpu) const {
  int64_t total = 0;
  for (const auto& entry : gpu_expert_tokens[gpu]) total += entry.second;
  return total;
}

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

RoutingPlan PlanFromChoices(const std::vector<std::vector<std::vector<int>>>& choices,
                            const Placement& placement, int64_t capacity_per_source,
                            int gpus_per_node, bool drop_by_score) {
  RoutingPlan plan = EmptyPlan(placement);
  for (size_t g = 0; g < choices.size() && g < plan.source_tokens.size(); ++g)
    plan.source_tokens[g] = static_cast<int>(choices[g].size());
  const std::vector<int64_t> capacity(placement.num_experts(), capacity_per_source);
  SourceAccumulator acc(plan, placement, capacity, gpus_per_node);
  for (int g = 0; g < static_cast<int>(choices.size()); ++g) {
    acc.Begin(g);
    if (drop_by_score && !choices[g].empty()) {
      const int k = static_cast<int>(choices[g][0].size());
      std::vector<int> buffered;
      for (const auto& token : choices[g]) {
        if (static_cast<int>(token.size()) != k) throw std::invalid_argument("tokens need equal top-k");
        buffered.insert(buffered.end(), token.begin(), token.end());
      }
      const std::vector<char> keep = KeepByScore(buffered, k, capacity);
      for (size_t t = 0; t < choices[g].size(); ++t) acc.AddToken(choices[g][t], keep.data() + t * k);
    } else {
      for (const auto& token : choices[g]) acc.AddToken(token);
    }
    acc.End();
  }
  acc.Flush();
  return plan;
}

namespace {

// Receives one step's tokens, source by source; each token's experts highest score first.
class TokenSink {
 public:
  virtual ~TokenSink() = default;
  virtual void BeginSource(int src) = 0;
  virtual void Token(const std::vector<int>& experts) = 0;
  virtual void EndSource() = 0;
};

// SampleRouting's sink: capacity per (source, expert), following each source's own token
// count when counts vary; drops by position as tokens arrive, or by score once all of a
// source's tokens are in (KeepByScore).
class PlanSink : public TokenSink {
 public:
  PlanSink(const RoutingParams& params, const Placement& placement, RoutingPlan& plan)
      : params_(params), placement_(placement), plan_(plan), source_params_(params),
        capacity_(ExpertCapacities(params, placement)),
        acc_(plan, placement, capacity_, params.gpus_per_node),
        by_score_(params.drop_by_score && params.capacity_factor > 0) {}

  void BeginSource(int src) override {
    if (params_.token_sigma > 0) {
      source_params_.tokens_per_gpu = plan_.source_tokens[src];
      capacity_ = ExpertCapacities(source_params_, placement_);
      acc_.SetCapacity(capacity_);
    }
    acc_.Begin(src);
  }

  void Token(const std::vector<int>& experts) override {
    if (by_score_) {
      buffered_.insert(buffered_.end(), experts.begin(), experts.end());
    } else {
      acc_.AddToken(experts);
    }
  }

  void EndSource() override {
    if (by_score_) {
      const size_t k = static_cast<size_t>(params_.top_k);
      const std::vector<char> keep = KeepByScore(buffered_, params_.top_k, capacity_);
      std::vector<int> one(k);
      for (size_t t = 0; t < buffered_.size() / k; ++t) {
        std::copy(buffered_.begin() + t * k, buffered_.begin() + (t + 1) * k, one.begin());
        acc_.AddToken(one, keep.data() + t * k);
      }
      buffered_.clear();
    }
    acc_.End();
  }

  void Finish() { acc_.Flush(); }

 private:
  const RoutingParams& params_;
  const Placement& placement_;
  RoutingPlan& plan_;
  RoutingParams source_params_;    // params with the current source's token count
  std::vector<int64_t> capacity_;  // per expert, for the current source
  SourceAccumulator acc_;
  bool by_score_;
  std::vector<int> buffered_;      // the current source's T x k choices (drop by score)
};

// SampleTokenChoices' sink: keeps every token.
class ChoiceSink : public TokenSink {
 public:
  explicit ChoiceSink(int num_gpus) : choices(num_gpus) {}
  void BeginSource(int src) override { src_ = src; }
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
                 const std::vector<int>& source_tokens, TokenSink& sink) {
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
  int64_t position = 0;  // the scenario's token index over all sources
  for (int g = 0; g < placement.num_gpus(); ++g) {
    sink.BeginSource(g);
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

// Draws every token of step `step` (see SampleRouting) into `sink`.
void SampleTokens(const RoutingParams& params, const Placement& placement, int step,
                  const std::vector<int>& source_tokens, TokenSink& sink) {
  const int num_experts = placement.num_experts();
  if (params.top_k > num_experts) throw std::invalid_argument("top_k exceeds the number of experts");
  if (params.spec.kind == RoutingSpec::Kind::kTrace && params.spec.TraceSteps() == 0)
    throw std::invalid_argument("the routing trace is not loaded (LoadRoutingTrace)");
  if (params.spec.IsTokenTrace()) return ReplayTrace(params, placement, step, source_tokens, sink);
  std::vector<int> token;
  std::vector<char> taken(num_experts, 0);

  const bool hot = params.spec.kind == RoutingSpec::Kind::kHot;
  // Hot expert (expert 0 of a seeded choice): each token includes it with probability
  // SHARE * k, so it receives SHARE of all assignments; the rest are uniform.
  int hot_expert = 0;
  double hot_probability = 0;
  // Popularity (Zipf permutation, hot expert) is redrawn each drift epoch; epoch 0 keeps the
  // plain seed so that runs without drift are unchanged.
  const uint64_t popularity_seed = params.seed ^ (static_cast<uint64_t>(params.epoch) * 0x9E3779B97F4A7C15ull);
  std::vector<double> weights =
      params.spec.kind == RoutingSpec::Kind::kTrace
          ? params.spec.trace_weights[static_cast<size_t>(step) % params.spec.trace_weights.size()]
          : ExpertWeights(params.spec, num_experts, popularity_seed);
  if (static_cast<int>(weights.size()) != num_experts)
    throw std::invalid_argument("routing weights do not match the number of experts");
  if (params.balance > 0 && !hot) {
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    for (double& w : weights) w = (1 - params.balance) * w / total + params.balance / num_experts;
  }
  if (hot) {
    Rng rng = StreamFor(popularity_seed, UINT32_MAX, UINT32_MAX - 1);
    hot_expert = UniformInt(rng, num_experts);
    // Balance pulls the hot share toward the uniform 1 / E.
    const double share = (1 - params.balance) * params.spec.parameter + params.balance / num_experts;
    hot_probability = share * params.top_k;
    if (hot_probability > 1.0 + 1e-12)
      throw std::invalid_argument("hot share exceeds 1/top_k: a token picks an expert at most once");
    weights[hot_expert] = 0;  // drawn separately
  }
  const bool node_limited = params.node_limit > 0 && params.gpus_per_node > 0;

  // A burst, only on burst steps so that other steps draw exactly as without bursts. Expert b
  // joins a token with probability k s_b, where s_b = (1 - S) p_b + S is its share of the
  // assignments; the token's other picks come from the other experts as before, whose shares
  // all scale by (1 - S). (The node-limited path folds the burst into its weights below.)
  const int burst_expert = BurstExpert(params, num_experts, step);
  const double burst_share = burst_expert >= 0 ? params.burst_share : 0;
  double burst_probability = 0;
  if (burst_expert >= 0 && !node_limited) {
    // p_b: b's share without the burst: the hot share, or its part of what the hot expert leaves.
    const double hot_share = hot ? hot_probability / params.top_k : 0;
    const double rest = std::accumulate(weights.begin(), weights.end(), 0.0);  // hot excluded
    const double base = hot && burst_expert == hot_expert ? hot_share
                        : rest > 0                       ? (1 - hot_share) * weights[burst_expert] / rest
                                                         : 0;
    burst_probability = std::min(1.0, params.top_k * ((1 - burst_share) * base + burst_share));
    if (hot) {
      // The hot expert keeps (1 - S) of its share, unless it is the one bursting; with top-1
      // it can only join the tokens the burst expert left free.
      hot_probability = burst_expert == hot_expert ? 0 : hot_probability * (1 - burst_share);
      if (params.top_k == 1)
        hot_probability = burst_probability < 1 ? hot_probability / (1 - burst_probability) : 0;
    }
    weights[burst_expert] = 0;  // drawn separately
  }
  AliasTable table(weights);

  // Node-limited routing: nodes by the routing mass of their experts, then experts inside.
  std::vector<std::vector<int>> node_experts;
  std::vector<double> node_weights;
  if (node_limited) {
    const int nodes = (placement.num_gpus() + params.gpus_per_node - 1) / params.gpus_per_node;
    node_experts.resize(nodes);
    node_weights.assign(nodes, 0.0);
    std::vector<double> effective = weights;
    if (hot) {  // the hot expert's weight that gives it SHARE of the draws
      double others = std::accumulate(weights.begin(), weights.end(), 0.0);
      effective[hot_expert] = others * params.spec.parameter / (1 - params.spec.parameter);
    }
    if (burst_expert >= 0) {  // (1 - S) of every expert's mass, plus S for the burst expert
      const double total = std::accumulate(effective.begin(), effective.end(), 0.0);
      for (double& w : effective) w *= (1 - burst_share) / total;
      effective[burst_expert] += burst_share;
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
      node_experts[node].push_back(e);
      node_weights[node] += effective[e];
    }
    weights = effective;
    const int reachable = std::min<int>(params.node_limit, nodes);
    std::vector<size_t> sizes;
    for (const auto& experts : node_experts) sizes.push_back(experts.size());
    std::sort(sizes.rbegin(), sizes.rend());
    size_t most = 0;
    for (int i = 0; i < reachable; ++i) most += sizes[i];
    if (most < static_cast<size_t>(params.top_k))
      throw std::invalid_argument("top_k exceeds the experts of node_limit nodes");
  }
  AliasTable node_table(node_limited ? node_weights : std::vector<double>{1.0});
  std::vector<char> node_taken(node_weights.size(), 0);
  std::vector<int> chosen_nodes, candidates;
  std::vector<double> candidate_weights;

  for (int g = 0; g < placement.num_gpus(); ++g) {
    Rng rng = StreamFor(params.seed, static_cast<uint64_t>(step), g);
    sink.BeginSource(g);
    for (int t = 0; t < source_tokens[g]; ++t) {
      token.clear();
      if (node_limited) {
        chosen_nodes.clear();
        const int m = std::min<int>(params.node_limit, static_cast<int>(node_weights.size()));
        DrawDistinct(node_table, node_weights, m, rng, chosen_nodes, node_taken);
        for (int n : chosen_nodes) node_taken[n] = 0;
        candidates.clear();
        candidate_weights.clear();
        for (int n : chosen_nodes) {
          for (int e : node_experts[n]) {
            candidates.push_back(e);
            candidate_weights.push_back(weights[e]);
          }
        }
        // k distinct among the candidates, successive weighted sampling (linear draws).
        for (int pick = 0; pick < params.top_k; ++pick) {
          double total = 0;
          for (double w : candidate_weights) total += w;
          double target = Uniform01(rng) * total;
          size_t chosen = 0;
          for (size_t c = 0; c < candidates.size(); ++c) {
            if (candidate_weights[c] <= 0) continue;
            chosen = c;
            target -= candidate_weights[c];
            if (target < 0) break;
          }
          token.push_back(candidates[chosen]);
          candidate_weights[chosen] = 0;
        }
        sink.Token(token);
        continue;
      }
      if (burst_expert >= 0) {
        if (Uniform01(rng) < burst_probability) token.push_back(burst_expert);
        taken[burst_expert] = 1;  // never drawn again in this token
      }
      if (hot && static_cast<int>(token.size()) < params.top_k && Uniform01(rng) < hot_probability) {
        token.push_back(hot_expert);
        taken[hot_expert] = 1;
      }
      if (hot) taken[hot_expert] = 1;  // never drawn again in this token
      DrawDistinct(table, weights, params.top_k, rng, token, taken);
      for (int e : token) taken[e] = 0;
      if (hot) taken[hot_expert] = 0;
      if (burst_expert >= 0) taken[burst_expert] = 0;
      sink.Token(token);
    }
    sink.EndSource();
  }
}

}  // namespace

int BurstExpert(const RoutingParams& params, int num_experts, int64_t step) {
  if (params.burst_every <= 0 || num_experts < 1 || (step + 1) % params.burst_every != 0) return -1;
  const int64_t burst = (step + 1) / params.burst_every;  // 1 for the first burst, 2, ...
  Rng rng = StreamFor(params.seed ^ 0x6275727374ull /* "burst" */, static_cast<uint64_t>(burst), UINT32_MAX - 2);
  return UniformInt(rng, num_experts);
}

RoutingPlan SampleRouting(const RoutingParams& params, const Placement& placement, int step) {
  RoutingPlan plan = EmptyPlan(placement);
  plan.source_tokens = TokensPerSource(params, placement.num_gpus(), step);
  PlanSink sink(params, placement, plan);
  SampleTokens(params, placement, step, plan.source_tokens, sink);
  sink.Finish();
  return plan;
}

std::vector<std::vector<std::vector<int>>> SampleTokenChoices(const RoutingParams& params,
                                                              const Placement& placement,
                                                              int step) {
  ChoiceSink sink(placement.num_gpus());
  SampleTokens(params, placement, step, TokensPerSource(params, placement.num_gpus(), step), sink);
  return std::move(sink.choices);
}

}  // namespace epsim
