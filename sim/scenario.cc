// epsim: scenario loading (see scenario.h).
#include "sim/scenario.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>

#include "sim/config.h"

namespace epsim {
namespace {

struct FieldInfo {
  const char* key;
  const char* flag;
  bool required;
  const char* fallback;  // used when not required and absent
};

// The schema: every key a scenario may have, its flag, and its default.
const std::vector<FieldInfo>& Schema() {
  static const std::vector<FieldInfo> kFields = {
      {"name", "--name", false, "unnamed"},
      {"topology", "--topology", true, nullptr},
      {"nodes", "--nodes", false, "0"},
      {"profile", "--profile", false, ""},
      {"model.hidden", "--hidden", true, nullptr},
      {"model.expert_ffn", "--expert-ffn", true, nullptr},
      {"model.experts", "--experts", true, nullptr},
      {"model.shared_experts", "--shared-experts", false, "0"},
      {"model.top_k", "--top-k", true, nullptr},
      {"model.dispatch_dtype", "--dispatch-dtype", false, "bf16"},
      {"model.combine_dtype", "--combine-dtype", false, "bf16"},
      {"workload.gpus", "--gpus", true, nullptr},
      {"workload.tokens_per_gpu", "--tokens-per-gpu", true, nullptr},
      {"workload.steps", "--steps", false, "1"},
      {"workload.seed", "--seed", false, "1"},
      {"workload.routing", "--routing", false, "uniform"},
      {"workload.drift_steps", "--drift-steps", false, "0"},
      {"workload.token_spread", "--token-spread", false, "none"},
      {"workload.balance", "--balance", false, "0"},
      {"workload.burst", "--burst", false, "none"},
      {"strategy.capacity_factor", "--capacity-factor", false, "none"},
      {"strategy.drop_policy", "--drop-policy", false, "position"},
      {"strategy.a2a", "--a2a", false, "direct"},
      {"strategy.node_limit", "--node-limit", false, "0"},
      {"strategy.parallelism", "--parallelism", false, "ep"},
      {"strategy.placement", "--placement", false, "contiguous"},
      {"strategy.redundant_experts", "--redundant-experts", false, "0"},
      {"strategy.rebalance_interval", "--rebalance-interval", false, "10"},
      {"strategy.overlap", "--overlap", false, "none"},
      {"engine", "--engine", false, "simgrid"},
  };
  return kFields;
}

// Field values as text, keyed by dotted path, with where each came from.
class FieldValues {
 public:
  void Set(const std::string& key, const std::string& value, const std::string& origin) {
    values_[key] = value;
    origin_[key] = origin;
  }
  bool Has(const std::string& key) const { return values_.count(key) != 0; }
  const std::string& Get(const std::string& key) const { return values_.at(key); }
  const std::string& Origin(const std::string& key) const { return origin_.at(key); }
  const std::map<std::string, std::string>& origins() const { return origin_; }

  [[noreturn]] void Fail(const std::string& key, const std::string& why) const {
    const std::string& origin = Origin(key);
    // A flag names itself; a file names its key.
    if (!origin.empty() && origin[0] == '-') throw ConfigError("command line", origin, Get(key), why);
    throw ConfigError(origin, key, Get(key), why);
  }

  int64_t Int(const std::string& key, int64_t min_value, int64_t max_value) const {
    const std::string& text = Get(key);
    char* end = nullptr;
    errno = 0;
    long long number = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || end == text.c_str() || *end != '\0') Fail(key, "expected a whole number");
    if (errno == ERANGE || number > max_value)
      Fail(key, "too large (at most " + std::to_string(max_value) + ")");
    if (number < min_value) Fail(key, "must be >= " + std::to_string(min_value));
    return number;
  }

  double Positive(const std::string& key) const {
    const std::string& text = Get(key);
    char* end = nullptr;
    double number = std::strtod(text.c_str(), &end);
    if (text.empty() || end == text.c_str() || *end != '\0') Fail(key, "expected a number");
    if (!std::isfinite(number)) Fail(key, "not a finite number");
    if (number <= 0) Fail(key, "must be > 0");
    return number;
  }

  std::string OneOf(const std::string& key, const std::set<std::string>& allowed) const {
    const std::string& text = Get(key);
    if (allowed.count(text) == 0) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      Fail(key, "expected one of " + list);
    }
    return text;
  }

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> origin_;
};

bool IsKnownKey(const std::string& key) {
  for (const FieldInfo& f : Schema())
    if (key == f.key) return true;
  return false;
}

void ReadFile(const std::string& path, FieldValues& values) {
  YAML::Node root = LoadYamlFile(path);
  static const std::set<std::string> kSections = {"model", "workload", "strategy"};
  for (const auto& entry : root) {
    const std::string top = entry.first.Scalar();
    if (kSections.count(top) != 0) {
      if (!entry.second.IsMap()) throw ConfigError(path, top, "", "expected a mapping of keys");
      for (const auto& child : entry.second) {
        const std::string key = top + "." + child.first.Scalar();
        if (!IsKnownKey(key)) throw ConfigError(path, key, "", "unknown key");
        if (!child.second.IsScalar()) throw ConfigError(path, key, "", "expected a single value");
        values.Set(key, child.second.Scalar(), path);
      }
    } else {
      if (!IsKnownKey(top)) throw ConfigError(path, top, "", "unknown key");
      if (!entry.second.IsScalar()) throw ConfigError(path, top, "", "expected a single value");
      values.Set(top, entry.second.Scalar(), path);
    }
  }
}

std::string FormatNumber(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& ScenarioFlags() {
  static const std::vector<std::pair<std::string, std::string>> kFlags = [] {
    std::vector<std::pair<std::string, std::string>> flags;
    for (const FieldInfo& f : Schema()) flags.emplace_back(f.flag, f.key);
    return flags;
  }();
  return kFlags;
}

double Scenario::TokenBytes(const std::string& dtype, int64_t hidden) {
  const double h = static_cast<double>(hidden);
  return dtype == "fp8" ? h + 4.0 * std::ceil(h / 128.0) : 2.0 * h;
}

Scenario LoadScenario(const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& overrides) {
  FieldValues v;
  if (!path.empty()) ReadFile(path, v);
  for (const auto& [flag, value] : overrides) {
    std::string key;
    for (const FieldInfo& f : Schema())
      if (flag == f.flag) key = f.key;
    if (key.empty()) throw ConfigError("command line", flag, value, "unknown flag");
    v.Set(key, value, flag);
  }
  const std::string where = path.empty() ? "command line" : path;
  for (const FieldInfo& f : Schema()) {
    if (v.Has(f.key)) continue;
    if (f.required) {
      throw ConfigError(where, f.key, "",
                        std::string("missing required key (or flag ") + f.flag + ")");
    }
    v.Set(f.key, f.fallback, "default");
  }

  Scenario s;
  s.file = path;
  s.name = v.Get("name");
  s.topology = v.Get("topology");
  if (s.topology.empty()) v.Fail("topology", "must not be empty");
  s.nodes = v.Get("nodes") == "0" ? 0 : static_cast<int>(v.Int("nodes", 1, 1'000'000));
  s.profile = v.Get("profile");
  s.hidden = v.Int("model.hidden", 1, 1 << 20);
  s.expert_ffn = v.Int("model.expert_ffn", 1, 1 << 20);
  s.num_experts = static_cast<int>(v.Int("model.experts", 1, 1 << 20));
  s.shared_experts = static_cast<int>(v.Int("model.shared_experts", 0, 64));
  s.top_k = static_cast<int>(v.Int("model.top_k", 1, 1024));
  s.dispatch_dtype = v.OneOf("model.dispatch_dtype", {"bf16", "fp8"});
  s.combine_dtype = v.OneOf("model.combine_dtype", {"bf16", "fp8"});
  s.gpus = static_cast<int>(v.Int("workload.gpus", 1, 1 << 20));
  s.tokens_per_gpu = static_cast<int>(v.Int("workload.tokens_per_gpu", 1, 1 << 24));
  s.steps = static_cast<int>(v.Int("workload.steps", 1, 100'000));
  s.seed = static_cast<uint64_t>(v.Int("workload.seed", 0, std::numeric_limits<int64_t>::max()));
  try {
    s.routing = RoutingSpec::Parse(v.Get("workload.routing"));
  } catch (const std::invalid_argument& e) {
    v.Fail("workload.routing", e.what());
  }
  if (s.routing.kind == RoutingSpec::Kind::kTrace) {
    // A relative trace path is relative to the scenario file that names it.
    std::string path = s.routing.trace_path;
    const std::string& origin = v.Origin("workload.routing");
    if (!path.empty() && path[0] != '/' && origin.find('/') != std::string::npos && origin[0] != '-')
      path = origin.substr(0, origin.rfind('/') + 1) + path;
    try {
      LoadRoutingTrace(s.routing, path, s.num_experts, s.top_k);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(path, "", "", e.what());
    }
  }
  s.drift_steps = static_cast<int>(v.Int("workload.drift_steps", 0, 1'000'000));
  if (v.Get("workload.balance") != "0") {
    s.balance = v.Positive("workload.balance");
    if (s.balance > 1) v.Fail("workload.balance", "must be in [0, 1]");
  }
  {
    const std::string& spread = v.Get("workload.token_spread");
    if (spread != "none") {
      const std::string prefix = "lognormal:";
      char* end = nullptr;
      const double sigma = spread.rfind(prefix, 0) == 0
                               ? std::strtod(spread.c_str() + prefix.size(), &end) : -1;
      if (spread.rfind(prefix, 0) != 0 || end == spread.c_str() + prefix.size() || *end != '\0' ||
          !std::isfinite(sigma) || sigma <= 0 || sigma > 3)
        v.Fail("workload.token_spread", "expected none or lognormal:SIGMA with 0 < SIGMA <= 3");
      s.token_sigma = sigma;
    }
  }
  {
    const std::string& burst = v.Get("workload.burst");
    if (burst != "none") {
      const char* form = "expected none or EVERY:SHARE (a burst every EVERY steps taking SHARE of the assignments)";
      const size_t colon = burst.find(':');
      if (colon == std::string::npos) v.Fail("workload.burst", form);
      const std::string every_text = burst.substr(0, colon), share_text = burst.substr(colon + 1);
      char* end = nullptr;
      errno = 0;
      const long long every = std::strtoll(every_text.c_str(), &end, 10);
      if (every_text.empty() || *end != '\0' || errno == ERANGE) v.Fail("workload.burst", form);
      if (every < 1 || every > 1'000'000) v.Fail("workload.burst", "EVERY must be a whole number of steps in [1, 1000000]");
      end = nullptr;
      const double share = std::strtod(share_text.c_str(), &end);
      if (share_text.empty() || *end != '\0') v.Fail("workload.burst", form);
      if (!std::isfinite(share) || share <= 0 || share > 1) v.Fail("workload.burst", "SHARE must be in (0, 1/model.top_k]");
      s.burst_every = static_cast<int>(every);
      s.burst_share = share;
    }
  }
  const std::string& cf = v.Get("strategy.capacity_factor");
  s.capacity_factor = (cf == "none" || cf == "dropless") ? 0.0 : v.Positive("strategy.capacity_factor");

  s.engine = v.OneOf("engine", {"simgrid", "analytic"});
  s.a2a = v.OneOf("strategy.a2a", {"direct", "hierarchical", "rdma-only"});
  s.drop_policy = v.OneOf("strategy.drop_policy", {"position", "score"});
  s.node_limit = static_cast<int>(v.Int("strategy.node_limit", 0, 1'000'000));
  s.parallelism = v.OneOf("strategy.parallelism", {"ep", "tp"});
  s.placement = v.OneOf("strategy.placement", {"contiguous", "round-robin", "eplb", "eplb-hierarchical"});
  s.redundant_experts = static_cast<int>(v.Int("strategy.redundant_experts", 0, 1 << 20));
  s.rebalance_interval = static_cast<int>(v.Int("strategy.rebalance_interval", 1, 1'000'000));
  s.overlap = v.OneOf("strategy.overlap", {"none", "two-batch"});

  // Cross-field checks.
  if (s.top_k > s.num_experts)
    v.Fail("model.top_k", "exceeds model.experts = " + std::to_string(s.num_experts));
  if (s.routing.kind == RoutingSpec::Kind::kHot && s.routing.parameter * s.top_k > 1.0 + 1e-12)
    v.Fail("workload.routing", "hot share exceeds 1/top_k: a token picks an expert at most once");
  // redundant_experts is EPLB's budget; other placements use no copies (so that
  // `epsim compare --vary placement=contiguous,eplb` can fix the budget for all variants).
  if (s.parallelism == "tp") {
    for (const char* key : {"strategy.placement", "strategy.a2a", "strategy.node_limit"}) {
      if (v.Origin(key) != "default" && v.Get(key) != (std::string(key) == "strategy.placement" ? "contiguous"
                                                       : std::string(key) == "strategy.a2a" ? "direct" : "0"))
        v.Fail(key, "applies to expert parallelism, not to strategy.parallelism tp");
    }
  }
  if (s.overlap == "two-batch" && s.tokens_per_gpu < 2)
    v.Fail("strategy.overlap", "two micro-batches need workload.tokens_per_gpu >= 2");
  if (s.burst_every > 0 && s.burst_share * s.top_k > 1.0 + 1e-12) {
    v.Fail("workload.burst", "burst share exceeds 1/model.top_k = " + FormatNumber(1.0 / s.top_k) +
                                 ": a token picks an expert at most once");
  }
  if (s.routing.IsTokenTrace()) {
    // The trace fixes every token's experts: nothing may reshape them.
    const std::string why = "a per-token routing trace (workload.routing) fixes each token's experts: ";
    if (s.node_limit > 0) v.Fail("strategy.node_limit", why + "a node limit cannot apply");
    if (s.burst_every > 0) v.Fail("workload.burst", why + "bursts cannot apply");
    if (s.balance > 0) v.Fail("workload.balance", why + "balance cannot apply");
  }
  if (s.UsesEplb()) {
    const int64_t copies = static_cast<int64_t>(s.num_experts) + s.redundant_experts;
    if (copies < s.gpus || copies % s.gpus != 0) {
      v.Fail(v.Has("strategy.redundant_experts") && v.Origin("strategy.redundant_experts") != "default"
                 ? "strategy.redundant_experts" : "strategy.placement",
             s.placement + " needs experts + redundant experts (" + std::to_string(copies) +
                 ") to be a multiple of workload.gpus (" + std::to_string(s.gpus) + ")");
    }
  }
  if (s.placement == "eplb" && s.node_limit > 0) {
    v.Fail("strategy.node_limit", "a node limit with flat eplb is not modelled (an expert's copies may "
                                  "land on several nodes); use strategy.placement eplb-hierarchical, "
                                  "which keeps each expert's copies in one node");
  }
  // Hierarchical EPLB keeps an expert's copies in one node, however many GPUs there are.
  if (s.node_limit > 0 && s.gpus > s.num_experts && s.placement != "eplb-hierarchical")
    v.Fail("strategy.node_limit", "needs each expert on one GPU (no more GPUs than experts)");
  if (s.gpus > s.num_experts && s.gpus % s.num_experts != 0) {
    v.Fail("workload.gpus", "with more GPUs than experts (" + std::to_string(s.num_experts) +
                                "), GPUs must be a multiple of experts");
  }
  s.origin = v.origins();
  return s;
}

void CheckScenarioOnTopology(const Scenario& s, int domain_gpus) {
  if (s.placement != "eplb-hierarchical") return;
  // Names the key as LoadScenario does: the flag, or the file and key.
  auto fail = [&](const std::string& key, const std::string& value, const std::string& why) {
    const auto it = s.origin.find(key);
    const std::string origin = it == s.origin.end() || it->second == "default" ? s.file : it->second;
    if (!origin.empty() && origin[0] == '-') throw ConfigError("command line", origin, value, why);
    throw ConfigError(origin.empty() ? "command line" : origin, key, value, why);
  };
  const int domain = std::max(1, std::min(domain_gpus, s.gpus));
  if (s.gpus % domain != 0) {
    fail("strategy.placement", s.placement,
         "needs whole NVLink domains: workload.gpus (" + std::to_string(s.gpus) +
             ") must be a multiple of " + std::to_string(domain));
  }
  const int domains = s.gpus / domain;
  if (s.num_experts % domains != 0) {
    fail("strategy.placement", s.placement,
         "puts one group of contiguous experts in each NVLink domain: model.experts (" +
             std::to_string(s.num_experts) + ") must be a multiple of the " + std::to_string(domains) +
             " domains (workload.gpus " + std::to_string(s.gpus) + " / " + std::to_string(domain) +
             " GPUs per domain)");
  }
  // E + R a multiple of the GPUs (LoadScenario) and E of the domains: each domain then has
  // R / domains redundant slots.
}

std::vector<std::pair<std::string, std::string>> Scenario::Fields() const {
  return {
      {"name", name},
      {"topology", topology},
      {"nodes", std::to_string(nodes)},
      {"profile", profile},
      {"model.hidden", std::to_string(hidden)},
      {"model.expert_ffn", std::to_string(expert_ffn)},
      {"model.experts", std::to_string(num_experts)},
      {"model.shared_experts", std::to_string(shared_experts)},
      {"model.top_k", std::to_string(top_k)},
      {"model.dispatch_dtype", dispatch_dtype},
      {"model.combine_dtype", combine_dtype},
      {"workload.gpus", std::to_string(gpus)},
      {"workload.tokens_per_gpu", std::to_string(tokens_per_gpu)},
      {"workload.steps", std::to_string(steps)},
      {"workload.seed", std::to_string(seed)},
      {"workload.routing", routing.ToString()},
      {"workload.drift_steps", std::to_string(drift_steps)},
      {"workload.balance", FormatNumber(balance)},
      {"workload.burst", burst_every > 0 ? std::to_string(burst_every) + ":" + FormatNumber(burst_share) : "none"},
      {"workload.token_spread", token_sigma > 0 ? "lognormal:" + FormatNumber(token_sigma) : "none"},
      {"strategy.capacity_factor", capacity_factor > 0 ? FormatNumber(capacity_factor) : "none"},
      {"strategy.drop_policy", drop_policy},
      {"strategy.a2a", a2a},
      {"strategy.node_limit", std::to_string(node_limit)},
      {"strategy.parallelism", parallelism},
      {"strategy.placement", placement},
      {"strategy.redundant_experts", std::to_string(redundant_experts)},
      {"strategy.rebalance_interval", std::to_string(rebalance_interval)},
      {"strategy.overlap", overlap},
      {"engine", engine},
  };
}

}  // namespace epsim
