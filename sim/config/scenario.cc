// epsim config: scenario loading (see scenario.h).
#include "sim/config/scenario.h"

#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>

#include "common/numbers.h"
#include "common/yaml.h"
#include "sim/workload/routing_trace.h"

namespace epsim {

const EnumTable<Dtype>& DtypeNames() {
  static const EnumTable<Dtype> kNames = {{Dtype::kBf16, "bf16"}, {Dtype::kFp8, "fp8"}};
  return kNames;
}
const EnumTable<A2aAlgorithm>& A2aAlgorithmNames() {
  static const EnumTable<A2aAlgorithm> kNames = {{A2aAlgorithm::kDirect, "direct"},
                                                 {A2aAlgorithm::kHierarchical, "hierarchical"},
                                                 {A2aAlgorithm::kLowLatency, "low-latency"},
                                                 {A2aAlgorithm::kRdmaOnly, "rdma-only"}};
  return kNames;
}
const EnumTable<CommImpl>& CommImplNames() {
  static const EnumTable<CommImpl> kNames = {{CommImpl::kAuto, "auto"},
                                             {CommImpl::kNccl, "nccl"},
                                             {CommImpl::kDeepEpNormal, "deepep-normal"},
                                             {CommImpl::kDeepEpLowLatency, "deepep-ll"}};
  return kNames;
}
const EnumTable<Parallelism>& ParallelismNames() {
  static const EnumTable<Parallelism> kNames = {{Parallelism::kExpert, "ep"}, {Parallelism::kTensor, "tp"}};
  return kNames;
}
const EnumTable<PlacementPolicy>& PlacementPolicyNames() {
  static const EnumTable<PlacementPolicy> kNames = {{PlacementPolicy::kContiguous, "contiguous"},
                                                    {PlacementPolicy::kRoundRobin, "round-robin"},
                                                    {PlacementPolicy::kEplb, "eplb"},
                                                    {PlacementPolicy::kEplbHierarchical, "eplb-hierarchical"}};
  return kNames;
}
const EnumTable<DropPolicy>& DropPolicyNames() {
  static const EnumTable<DropPolicy> kNames = {{DropPolicy::kPosition, "position"}, {DropPolicy::kScore, "score"}};
  return kNames;
}
const EnumTable<Overlap>& OverlapNames() {
  static const EnumTable<Overlap> kNames = {{Overlap::kNone, "none"}, {Overlap::kTwoBatch, "two-batch"},
                                            {Overlap::kForwardBackward, "forward-backward"}};
  return kNames;
}
const EnumTable<RebalanceCost>& RebalanceCostNames() {
  static const EnumTable<RebalanceCost> kNames = {
      {RebalanceCost::kFree, "free"}, {RebalanceCost::kBlocking, "blocking"}, {RebalanceCost::kOverlapped, "overlapped"}};
  return kNames;
}
const EnumTable<Mode>& ModeNames() {
  static const EnumTable<Mode> kNames = {{Mode::kForward, "forward"}, {Mode::kTraining, "training"}, {Mode::kDecode, "decode"}};
  return kNames;
}
const EnumTable<Engine>& EngineNames() {
  static const EnumTable<Engine> kNames = {
      {Engine::kAuto, "auto"}, {Engine::kSimGrid, "simgrid"}, {Engine::kAnalytic, "analytic"}};
  return kNames;
}

const EnumTable<Sharing>& SharingNames() {
  static const EnumTable<Sharing> kNames = {
      {Sharing::kAuto, "auto"}, {Sharing::kMaxMin, "max-min"}, {Sharing::kProcessorSharing, "processor-sharing"}};
  return kNames;
}

std::pair<std::string, std::string> FieldOrigin(const Scenario& s, const std::string& key) {
  const auto it = s.sources.find(key);
  const std::string origin = it == s.sources.end() ? "default" : it->second.origin;
  if (!origin.empty() && origin[0] == '-') return {kCommandLine, origin};  // a flag names itself
  if (origin == "default") return {s.file.empty() ? kCommandLine : s.file, key};
  return {origin, key};
}

ConfigError FieldError(const Scenario& s, const std::string& key, const std::string& why) {
  const auto [file, where] = FieldOrigin(s, key);
  const auto it = s.sources.find(key);
  return ConfigError(file, where, it == s.sources.end() ? "" : it->second.text, why);
}

// Reads one field's text: every parse error names the field's origin and text.
class FieldReader {
 public:
  FieldReader(const Scenario& scenario, const std::string& key)
      : scenario_(scenario), key_(key), text_(scenario.sources.at(key).text) {}

  const std::string& Text() const { return text_; }
  const std::string& Origin() const { return scenario_.sources.at(key_).origin; }
  [[noreturn]] void Fail(const std::string& why) const { throw FieldError(scenario_, key_, why); }

  int64_t Int(int64_t min_value, int64_t max_value) const {
    int64_t number = 0;
    if (!ParseInt64(text_, &number)) {
      double any = 0;
      Fail(ParseFiniteDouble(text_, &any) && text_.find_first_of(".eE") == std::string::npos
               ? "too large (at most " + std::to_string(max_value) + ")"
               : "expected a whole number");
    }
    if (number > max_value) Fail("too large (at most " + std::to_string(max_value) + ")");
    if (number < min_value) Fail("must be >= " + std::to_string(min_value));
    return number;
  }

  double Positive() const {
    double number = 0;
    switch (ParseNumber(text_, &number)) {
      case NumberText::kNotANumber: Fail("expected a number");
      case NumberText::kNotFinite: Fail("not a finite number");
      case NumberText::kFinite: break;
    }
    if (number <= 0) Fail("must be > 0");
    return number;
  }

  template <typename E>
  E Enum(const EnumTable<E>& names) const {
    E value{};
    if (!ValueOf(names, text_, &value)) Fail("expected one of " + JoinedNames(names, ", "));
    return value;
  }

 private:
  const Scenario& scenario_;
  const std::string& key_;
  const std::string& text_;
};

namespace {

// "EVERY:SHARE" of workload.burst, or "lognormal:SIGMA" of workload.token_spread, split at ':'.
bool SplitAt(const std::string& text, char separator, std::string* head, std::string* tail) {
  const size_t at = text.find(separator);
  if (at == std::string::npos) return false;
  *head = text.substr(0, at);
  *tail = text.substr(at + 1);
  return true;
}

// One routing as written ("zipf:1.2", "trace:FILE") in field `r`, a trace read from its file
// (a relative path is relative to the scenario file that names it); a parse error names the
// field, prefixed by `entry` ("layer 2: " for an entry of a list).
RoutingSpec ReadRoutingSpec(const FieldReader& r, const std::string& text, const Scenario& s,
                            const std::string& entry) {
  RoutingSpec spec;
  try {
    spec = RoutingSpec::Parse(text);
  } catch (const std::invalid_argument& e) {
    r.Fail(entry + e.what());
  }
  if (spec.kind != RoutingSpec::Kind::kTrace) return spec;
  std::string path = spec.trace_path;
  const std::string& origin = r.Origin();
  if (!path.empty() && path[0] != '/' && origin.find('/') != std::string::npos && origin[0] != '-')
    path = origin.substr(0, origin.rfind('/') + 1) + path;
  LoadRoutingTrace(spec, path, s.num_experts, s.top_k);
  return spec;
}

// A trace with a layer column gives each MoE layer its own counts (workload.layer_routing,
// unless that is given: it then replaces them).
void ReadRouting(const FieldReader& r, Scenario& s) {
  s.routing = ReadRoutingSpec(r, r.Text(), s, "");
  if (!s.routing.IsLayeredTrace()) return;
  for (int layer = 0; layer < s.layers; ++layer) s.layer_routing.push_back(s.routing.ForLayer(layer));
}

// workload.layer_routing: "same", or one routing per MoE layer separated by ';'.
void ReadLayerRouting(const FieldReader& r, Scenario& s) {
  if (r.Text() == "same") return;
  s.layer_routing.clear();
  size_t begin = 0;
  for (int layer = 0;; ++layer) {
    const size_t end = r.Text().find(';', begin);
    std::string text = r.Text().substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    text.erase(0, text.find_first_not_of(' '));
    text.erase(text.find_last_not_of(' ') + 1);
    s.layer_routing.push_back(ReadRoutingSpec(r, text, s, "layer " + std::to_string(layer) + ": "));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
}

void ReadTokenSpread(const FieldReader& r, Scenario& s) {
  if (r.Text() == "none") return;
  std::string kind, sigma_text;
  double sigma = 0;
  if (!SplitAt(r.Text(), ':', &kind, &sigma_text) || kind != "lognormal" ||
      !ParseFiniteDouble(sigma_text, &sigma) || sigma <= 0 || sigma > 3)
    r.Fail("expected none or lognormal:SIGMA with 0 < SIGMA <= 3");
  s.token_sigma = sigma;
}

void ReadBurst(const FieldReader& r, Scenario& s) {
  if (r.Text() == "none") return;
  const char* form = "expected none or EVERY:SHARE (a burst every EVERY steps taking SHARE of the assignments)";
  std::string every_text, share_text;
  int64_t every = 0;
  if (!SplitAt(r.Text(), ':', &every_text, &share_text) || !ParseInt64(every_text, &every)) r.Fail(form);
  if (every < 1 || every > 1'000'000) r.Fail("EVERY must be a whole number of steps in [1, 1000000]");
  double share = 0;
  const NumberText parsed = ParseNumber(share_text, &share);
  if (parsed == NumberText::kNotANumber) r.Fail(form);
  if (parsed == NumberText::kNotFinite || share <= 0 || share > 1) r.Fail("SHARE must be in (0, 1/model.top_k]");
  s.burst_every = static_cast<int>(every);
  s.burst_share = share;
}

std::string Whole(int64_t value) { return std::to_string(value); }

// A two-way choice, written `yes` or `no` (on or off, blocking or free): true for `yes`.
bool ReadSwitch(const FieldReader& r, const std::string& yes, const std::string& no) {
  if (r.Text() != yes && r.Text() != no) r.Fail("expected " + yes + " or " + no);
  return r.Text() == yes;
}

}  // namespace

const std::vector<ScenarioField>& ScenarioSchema() {
  using R = const FieldReader&;
  using S = const Scenario&;
  static const std::vector<ScenarioField> kFields = {
      {"name", "--name", "unnamed", "TEXT", [](R r, Scenario& s) { s.name = r.Text(); },
       [](S s) { return s.name; }},
      {"topology", "--topology", nullptr, "NAME|FILE", [](R r, Scenario& s) {
         if (r.Text().empty()) r.Fail("must not be empty");
         s.topology = r.Text();
       },
       [](S s) { return s.topology; }},
      {"nodes", "--nodes", "0", "N (0: the topology's)",
       [](R r, Scenario& s) { s.nodes = r.Text() == "0" ? 0 : static_cast<int>(r.Int(1, 1'000'000)); },
       [](S s) { return Whole(s.nodes); }},
      {"profile", "--profile", "", "NAME|FILE (default: the topology's gpu)",
       [](R r, Scenario& s) { s.profile = r.Text(); },
       [](S s) { return s.profile; }},
      {"model.hidden", "--hidden", nullptr, "H", [](R r, Scenario& s) { s.hidden = r.Int(1, 1 << 20); },
       [](S s) { return Whole(s.hidden); }},
      {"model.expert_ffn", "--expert-ffn", nullptr, "F",
       [](R r, Scenario& s) { s.expert_ffn = r.Int(1, 1 << 20); }, [](S s) { return Whole(s.expert_ffn); }},
      {"model.experts", "--experts", nullptr, "E",
       [](R r, Scenario& s) { s.num_experts = static_cast<int>(r.Int(1, 1 << 20)); },
       [](S s) { return Whole(s.num_experts); }},
      {"model.shared_experts", "--shared-experts", "0", "N",
       [](R r, Scenario& s) { s.shared_experts = static_cast<int>(r.Int(0, 64)); },
       [](S s) { return Whole(s.shared_experts); }},
      {"model.layers", "--layers", "1", "L",
       [](R r, Scenario& s) { s.layers = static_cast<int>(r.Int(1, 1000)); },
       [](S s) { return Whole(s.layers); }},
      {"model.dense_layers", "--dense-layers", "0", "D",
       [](R r, Scenario& s) { s.dense_layers = static_cast<int>(r.Int(0, 1000)); },
       [](S s) { return Whole(s.dense_layers); }},
      {"model.dense_ffn", "--dense-ffn", "0", "F (0: none)",
       [](R r, Scenario& s) { s.dense_ffn = r.Int(0, 1 << 22); }, [](S s) { return Whole(s.dense_ffn); }},
      {"model.heads", "--heads", "0", "N (0: no attention costed)",
       [](R r, Scenario& s) { s.heads = static_cast<int>(r.Int(0, 4096)); }, [](S s) { return Whole(s.heads); }},
      {"model.kv_heads", "--kv-heads", "0", "N (0: model.heads)",
       [](R r, Scenario& s) { s.kv_heads = static_cast<int>(r.Int(0, 4096)); }, [](S s) { return Whole(s.kv_heads); }},
      {"model.head_dim", "--head-dim", "0", "D (0: hidden / heads)",
       [](R r, Scenario& s) { s.head_dim = static_cast<int>(r.Int(0, 1 << 16)); }, [](S s) { return Whole(s.head_dim); }},
      {"model.kv_lora_rank", "--kv-lora-rank", "0", "C (0: not MLA)",
       [](R r, Scenario& s) { s.kv_lora_rank = static_cast<int>(r.Int(0, 1 << 16)); },
       [](S s) { return Whole(s.kv_lora_rank); }},
      {"model.q_lora_rank", "--q-lora-rank", "0", "Q (0: no query latent)",
       [](R r, Scenario& s) { s.q_lora_rank = static_cast<int>(r.Int(0, 1 << 16)); },
       [](S s) { return Whole(s.q_lora_rank); }},
      {"model.rope_head_dim", "--rope-head-dim", "0", "R",
       [](R r, Scenario& s) { s.rope_head_dim = static_cast<int>(r.Int(0, 1 << 16)); },
       [](S s) { return Whole(s.rope_head_dim); }},
      {"model.top_k", "--top-k", nullptr, "K", [](R r, Scenario& s) { s.top_k = static_cast<int>(r.Int(1, 1024)); },
       [](S s) { return Whole(s.top_k); }},
      {"model.dispatch_dtype", "--dispatch-dtype", "bf16", JoinedNames(DtypeNames(), "|"),
       [](R r, Scenario& s) { s.dispatch_dtype = r.Enum(DtypeNames()); },
       [](S s) -> std::string { return NameOf(DtypeNames(), s.dispatch_dtype); }},
      {"model.combine_dtype", "--combine-dtype", "bf16", JoinedNames(DtypeNames(), "|"),
       [](R r, Scenario& s) { s.combine_dtype = r.Enum(DtypeNames()); },
       [](S s) -> std::string { return NameOf(DtypeNames(), s.combine_dtype); }},
      {"model.expert_dtype", "--expert-dtype", "bf16", JoinedNames(DtypeNames(), "|"),
       [](R r, Scenario& s) { s.expert_dtype = r.Enum(DtypeNames()); },
       [](S s) -> std::string { return NameOf(DtypeNames(), s.expert_dtype); }},
      {"model.attention_dtype", "--attention-dtype", "bf16", JoinedNames(DtypeNames(), "|"),
       [](R r, Scenario& s) { s.attention_dtype = r.Enum(DtypeNames()); },
       [](S s) -> std::string { return NameOf(DtypeNames(), s.attention_dtype); }},
      {"workload.gpus", "--gpus", nullptr, "P", [](R r, Scenario& s) { s.gpus = static_cast<int>(r.Int(1, 1 << 20)); },
       [](S s) { return Whole(s.gpus); }},
      {"workload.tokens_per_gpu", "--tokens-per-gpu", nullptr, "T",
       [](R r, Scenario& s) { s.tokens_per_gpu = static_cast<int>(r.Int(1, 1 << 24)); },
       [](S s) { return Whole(s.tokens_per_gpu); }},
      {"workload.steps", "--steps", "1", "N", [](R r, Scenario& s) { s.steps = static_cast<int>(r.Int(1, 100'000)); },
       [](S s) { return Whole(s.steps); }},
      {"workload.seed", "--seed", "1", "N",
       [](R r, Scenario& s) {
         s.seed = static_cast<uint64_t>(r.Int(0, std::numeric_limits<int64_t>::max()));
       },
       [](S s) { return std::to_string(s.seed); }},
      {"workload.routing", "--routing", "uniform", "uniform|zipf:S|hot:SHARE|trace:FILE", ReadRouting,
       [](S s) { return s.routing.ToString(); }},
      {"workload.layer_routing", "--layer-routing", "same", "same|ROUTING;ROUTING;...", ReadLayerRouting,
       [](S s) { return s.LayerRoutingGiven() ? s.RoutingText() : std::string("same"); }},
      {"workload.mode", "--mode", "forward", JoinedNames(ModeNames(), "|"),
       [](R r, Scenario& s) { s.mode = r.Enum(ModeNames()); },
       [](S s) -> std::string { return NameOf(ModeNames(), s.mode); }},
      {"workload.recompute", "--recompute", "off", "on|off",
       [](R r, Scenario& s) { s.recompute = ReadSwitch(r, "on", "off"); },
       [](S s) -> std::string { return s.recompute ? "on" : "off"; }},
      {"workload.sequence_length", "--sequence-length", "0", "S",
       [](R r, Scenario& s) { s.sequence_length = static_cast<int>(r.Int(0, 1 << 24)); },
       [](S s) { return Whole(s.sequence_length); }},
      {"workload.drift_steps", "--drift-steps", "0", "N",
       [](R r, Scenario& s) { s.drift_steps = static_cast<int>(r.Int(0, 1'000'000)); },
       [](S s) { return Whole(s.drift_steps); }},
      {"workload.balance", "--balance", "0", "B",
       [](R r, Scenario& s) {
         if (r.Text() == "0") return;
         s.balance = r.Positive();
         if (s.balance > 1) r.Fail("must be in [0, 1]");
       },
       [](S s) { return FormatG(s.balance); }},
      {"workload.burst", "--burst", "none", "none|EVERY:SHARE", ReadBurst,
       [](S s) {
         return s.burst_every > 0 ? std::to_string(s.burst_every) + ":" + FormatG(s.burst_share)
                                  : std::string("none");
       }},
      {"workload.token_spread", "--token-spread", "none", "none|lognormal:SIGMA", ReadTokenSpread,
       [](S s) { return s.token_sigma > 0 ? "lognormal:" + FormatG(s.token_sigma) : std::string("none"); }},
      {"strategy.capacity_factor", "--capacity-factor", "none", "CF|none",
       [](R r, Scenario& s) {
         s.capacity_factor = r.Text() == "none" || r.Text() == "dropless" ? 0.0 : r.Positive();
       },
       [](S s) { return s.capacity_factor > 0 ? FormatG(s.capacity_factor) : std::string("none"); }},
      {"strategy.drop_policy", "--drop-policy", "position", JoinedNames(DropPolicyNames(), "|"),
       [](R r, Scenario& s) { s.drop_policy = r.Enum(DropPolicyNames()); },
       [](S s) -> std::string { return NameOf(DropPolicyNames(), s.drop_policy); }},
      {"strategy.a2a", "--a2a", "direct", JoinedNames(A2aAlgorithmNames(), "|"), [](R r, Scenario& s) { s.a2a = r.Enum(A2aAlgorithmNames()); },
       [](S s) -> std::string { return NameOf(A2aAlgorithmNames(), s.a2a); }},
      {"strategy.comm", "--comm", "auto", JoinedNames(CommImplNames(), "|"),
       [](R r, Scenario& s) { s.comm = r.Enum(CommImplNames()); },
       [](S s) -> std::string { return NameOf(CommImplNames(), s.comm); }},
      {"strategy.comm_sms", "--comm-sms", "0", "N (0: the implementation's)",
       [](R r, Scenario& s) { s.comm_sms = static_cast<int>(r.Int(0, 1024)); },
       [](S s) { return Whole(s.comm_sms); }},
      {"strategy.pxn", "--pxn", "off", "on|off",
       [](R r, Scenario& s) { s.pxn = ReadSwitch(r, "on", "off"); },
       [](S s) -> std::string { return s.pxn ? "on" : "off"; }},
      {"strategy.node_limit", "--node-limit", "0", "M",
       [](R r, Scenario& s) { s.node_limit = static_cast<int>(r.Int(0, 1'000'000)); },
       [](S s) { return Whole(s.node_limit); }},
      {"strategy.parallelism", "--parallelism", "ep", JoinedNames(ParallelismNames(), "|"),
       [](R r, Scenario& s) { s.parallelism = r.Enum(ParallelismNames()); },
       [](S s) -> std::string { return NameOf(ParallelismNames(), s.parallelism); }},
      {"strategy.placement", "--placement", "contiguous", JoinedNames(PlacementPolicyNames(), "|"),
       [](R r, Scenario& s) { s.placement = r.Enum(PlacementPolicyNames()); },
       [](S s) -> std::string { return NameOf(PlacementPolicyNames(), s.placement); }},
      {"strategy.redundant_experts", "--redundant-experts", "0", "R",
       [](R r, Scenario& s) { s.redundant_experts = static_cast<int>(r.Int(0, 1 << 20)); },
       [](S s) { return Whole(s.redundant_experts); }},
      {"strategy.rebalance_interval", "--rebalance-interval", "10", "N",
       [](R r, Scenario& s) { s.rebalance_interval = static_cast<int>(r.Int(1, 1'000'000)); },
       [](S s) { return Whole(s.rebalance_interval); }},
      {"strategy.rebalance_cost", "--rebalance-cost", "free", JoinedNames(RebalanceCostNames(), "|"),
       [](R r, Scenario& s) { s.rebalance_cost = r.Enum(RebalanceCostNames()); },
       [](S s) -> std::string { return NameOf(RebalanceCostNames(), s.rebalance_cost); }},
      {"strategy.overlap", "--overlap", "none", JoinedNames(OverlapNames(), "|"), [](R r, Scenario& s) { s.overlap = r.Enum(OverlapNames()); },
       [](S s) -> std::string { return NameOf(OverlapNames(), s.overlap); }},
      {"faults", "--fault", "none", "KIND:TARGET:FRACTION[@STEP][;...]",
       [](R r, Scenario& s) {
         try {
           s.faults = ParseFaults(r.Text());
         } catch (const std::invalid_argument& e) {
           r.Fail(e.what());
         }
       },
       [](S s) { return FaultsText(s.faults); }},
      {"engine", "--engine", "auto", JoinedNames(EngineNames(), "|"), [](R r, Scenario& s) { s.engine = r.Enum(EngineNames()); },
       [](S s) -> std::string { return NameOf(EngineNames(), s.engine); }},
      {"sharing", "--sharing", "auto", JoinedNames(SharingNames(), "|"), [](R r, Scenario& s) { s.sharing = r.Enum(SharingNames()); },
       [](S s) -> std::string { return NameOf(SharingNames(), s.sharing); }},
  };
  return kFields;
}

const std::vector<std::pair<std::string, std::string>>& ScenarioFlags() {
  static const std::vector<std::pair<std::string, std::string>> kFlags = [] {
    std::vector<std::pair<std::string, std::string>> flags;
    for (const ScenarioField& f : ScenarioSchema()) flags.emplace_back(f.flag, f.key);
    return flags;
  }();
  return kFlags;
}

CommImpl Scenario::Implementation() const {
  if (comm != CommImpl::kAuto) return comm;
  if (parallelism == Parallelism::kTensor) return CommImpl::kNccl;
  switch (a2a) {
    case A2aAlgorithm::kDirect: return CommImpl::kNccl;
    case A2aAlgorithm::kHierarchical: return CommImpl::kDeepEpNormal;
    case A2aAlgorithm::kLowLatency:
    case A2aAlgorithm::kRdmaOnly: return CommImpl::kDeepEpLowLatency;
  }
  return CommImpl::kNccl;
}

std::vector<const RoutingSpec*> Scenario::LayerRoutings() const {
  if (layer_routing.empty()) return {&routing};
  std::vector<const RoutingSpec*> specs;
  for (const RoutingSpec& spec : layer_routing) specs.push_back(&spec);
  return specs;
}

bool Scenario::LayerRoutingGiven() const {
  const auto it = sources.find("workload.layer_routing");
  return it != sources.end() && it->second.text != "same";
}

std::string Scenario::RoutingText() const {
  if (!LayerRoutingGiven()) return routing.ToString() + (routing.IsLayeredTrace() ? " (a layer column)" : "");
  std::string text;
  for (const RoutingSpec& spec : layer_routing) text += (text.empty() ? "" : "; ") + spec.ToString();
  return text;
}

double Scenario::TokenBytes(Dtype dtype, int64_t hidden) {
  const double h = static_cast<double>(hidden);
  return dtype == Dtype::kFp8 ? h + 4.0 * std::ceil(h / 128.0) : 2.0 * h;
}

std::vector<std::pair<std::string, std::string>> Scenario::Fields() const {
  std::vector<std::pair<std::string, std::string>> fields;
  for (const ScenarioField& f : ScenarioSchema()) fields.emplace_back(f.key, f.echo(*this));
  return fields;
}

namespace {

const ScenarioField* FindField(const std::string& key) {
  for (const ScenarioField& f : ScenarioSchema())
    if (key == f.key) return &f;
  return nullptr;
}

// The file's values into s.sources: top-level keys and the keys of the model, workload and
// strategy sections.
void ReadFile(const std::string& path, Scenario& s) {
  const YAML::Node root = LoadYamlFile(path);
  static const std::set<std::string> kSections = {"model", "workload", "strategy"};
  auto take = [&](const std::string& key, const YAML::Node& value) {
    if (FindField(key) == nullptr) throw ConfigError(path, key, "", "unknown key");
    // A list of faults or of layers' routings: one per item, joined by ';'.
    if ((key == "faults" || key == "workload.layer_routing") && value.IsSequence()) {
      std::string joined;
      for (const YAML::Node& item : value) {
        if (!item.IsScalar()) {
          throw ConfigError(path, key, "", key == "faults" ? "expected a list of faults as text (gpu:3:0.9@2)"
                                                           : "expected a list of routings as text (zipf:1.2)");
        }
        joined += (joined.empty() ? "" : ";") + item.Scalar();
      }
      s.sources[key] = {joined.empty() ? (key == "faults" ? "none" : "same") : joined, path};
      return;
    }
    if (!value.IsScalar()) throw ConfigError(path, key, "", "expected a single value");
    s.sources[key] = {value.Scalar(), path};
  };
  for (const auto& entry : root) {
    const std::string top = entry.first.Scalar();
    if (kSections.count(top) == 0) {
      take(top, entry.second);
      continue;
    }
    if (!entry.second.IsMap()) throw ConfigError(path, top, "", "expected a mapping of keys");
    for (const auto& child : entry.second) take(top + "." + child.first.Scalar(), child.second);
  }
}

}  // namespace

Scenario LoadScenario(const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& overrides) {
  Scenario s;
  s.file = path;
  if (!path.empty()) ReadFile(path, s);
  for (const auto& [flag, value] : overrides) {
    const ScenarioField* field = nullptr;
    for (const ScenarioField& f : ScenarioSchema())
      if (flag == f.flag) field = &f;
    if (field == nullptr) throw ConfigError(kCommandLine, flag, value, "unknown flag");
    // --fault repeats: each adds one to those of earlier --fault flags (a file's are replaced).
    const auto earlier = s.sources.find(field->key);
    if (std::string(field->key) == "faults" && earlier != s.sources.end() && earlier->second.origin == flag) {
      earlier->second.text += ";" + value;
      continue;
    }
    s.sources[field->key] = {value, flag};
  }
  for (const ScenarioField& f : ScenarioSchema()) {
    if (s.sources.count(f.key) != 0) continue;
    if (f.fallback == nullptr) {
      throw ConfigError(path.empty() ? kCommandLine : path, f.key, "",
                        std::string("missing required key (or flag ") + f.flag + ")");
    }
    s.sources[f.key] = {f.fallback, "default"};
  }
  for (const ScenarioField& f : ScenarioSchema()) f.read(FieldReader(s, f.key), s);
  return s;
}

}  // namespace epsim
