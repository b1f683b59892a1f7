// epsim config: resolving and checking one run's inputs (see inputs.h).
#include "sim/config/inputs.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/numbers.h"
#include "sim/config/data_files.h"
#include "sim/workload/placement.h"

namespace epsim {
namespace {

bool SetByUser(const Scenario& s, const std::string& key) { return s.sources.at(key).origin != "default"; }

// Each fault names a part the run has, from a step the run reaches. Link names are checked
// where the links are laid out (StepBuilder).
void CheckFaults(const Scenario& s, const Topology& t) {
  const int nodes = (s.gpus + t.gpus_per_node - 1) / t.gpus_per_node;
  for (const Fault& f : s.faults) {
    const std::string what = "'" + f.text + "': ";
    if (f.from_step >= s.steps)
      throw FieldError(s, "faults", what + "starts at step " + std::to_string(f.from_step) + ", after the run's last (" +
                                        std::to_string(s.steps - 1) + ")");
    if (s.engine == Engine::kSimGrid && TurnsRoutes(f))
      throw FieldError(s, "faults", what + "a part down inside the fabric needs routes turned around it, which "
                                           "SimGrid's fat tree does not do: use engine analytic (engine auto does)");
    if (f.kind == FaultKind::kGpu && f.gpu >= s.gpus)
      throw FieldError(s, "faults", what + "the run has GPUs 0 to " + std::to_string(s.gpus - 1));
    if (f.kind == FaultKind::kNic) {
      if (t.scale_out.nics_per_node == 0) throw FieldError(s, "faults", what + "topology '" + t.name + "' has no NICs");
      if (f.node >= nodes || f.nic >= t.scale_out.nics_per_node)
        throw FieldError(s, "faults", what + "the run has nodes 0 to " + std::to_string(nodes - 1) + " with NICs 0 to " +
                                          std::to_string(t.scale_out.nics_per_node - 1));
    }
  }
}

// The checks a scenario needs on its own: its fields against each other.
void CheckScenarioFields(const Scenario& s) {
  if (s.top_k > s.num_experts)
    throw FieldError(s, "model.top_k", "exceeds model.experts = " + std::to_string(s.num_experts));
  if (s.LayerRoutingGiven() && static_cast<int>(s.layer_routing.size()) != s.layers) {
    throw FieldError(s, "workload.layer_routing", "gives " + std::to_string(s.layer_routing.size()) +
                                                      " routings for model.layers = " + std::to_string(s.layers) +
                                                      " (one per MoE layer)");
  }
  // Layers' routings replace workload.routing: both given is a contradiction, unless a flag
  // gives the layers' over a file's single routing.
  const auto is_flag = [&](const char* key) { return s.sources.at(key).origin[0] == '-'; };
  if (s.LayerRoutingGiven() && SetByUser(s, "workload.routing") &&
      (is_flag("workload.routing") || !is_flag("workload.layer_routing")))
    throw FieldError(s, "workload.layer_routing", "replaces workload.routing: give one of them");
  // Which key the layers' routings came from, for the checks on each.
  const std::string routing_key = s.LayerRoutingGiven() ? "workload.layer_routing" : "workload.routing";
  bool hot = false, token_trace = false;
  for (const RoutingSpec* spec : s.LayerRoutings()) {
    const bool this_hot = spec->kind == RoutingSpec::Kind::kHot;
    if (this_hot && spec->parameter * s.top_k > 1.0 + 1e-12)
      throw FieldError(s, routing_key, "hot share exceeds 1/top_k: a token picks an expert at most once");
    hot = hot || this_hot;
    token_trace = token_trace || spec->IsTokenTrace();
  }
  // A token that does not take the hot expert (or the burst expert) draws all top_k from
  // the others: there must be that many.
  if (hot && s.top_k > s.num_experts - 1) {
    throw FieldError(s, routing_key, "needs model.top_k (" + std::to_string(s.top_k) +
                                         ") below model.experts (" + std::to_string(s.num_experts) +
                                         "): a token without the hot expert takes top_k others");
  }
  if (s.burst_every > 0 && s.top_k > s.num_experts - 1 - (hot ? 1 : 0)) {
    throw FieldError(s, "workload.burst", "needs model.top_k (" + std::to_string(s.top_k) + ") at most model.experts - " +
                                              (hot ? "2" : "1") + " (" + std::to_string(s.num_experts) +
                                              " experts): a token without the burst" + (hot ? " and hot experts" : " expert") +
                                              " takes top_k others");
  }
  if (s.parallelism == Parallelism::kTensor) {
    // Placement, all-to-all and node limit are expert parallelism's; set to anything but
    // their defaults they would be silently ignored.
    for (const char* key : {"strategy.placement", "strategy.a2a", "strategy.node_limit"}) {
      const ScenarioField* field = nullptr;
      for (const ScenarioField& f : ScenarioSchema())
        if (std::string(f.key) == key) field = &f;
      if (SetByUser(s, key) && s.sources.at(key).text != field->fallback)
        throw FieldError(s, key, "applies to expert parallelism, not to strategy.parallelism tp");
    }
  }
  if (s.pxn && (s.a2a != A2aAlgorithm::kDirect || s.parallelism != Parallelism::kExpert))
    throw FieldError(s, "strategy.pxn", "relays the direct all-to-all (strategy.a2a direct, expert parallelism)");
  if (s.overlap == Overlap::kForwardBackward && s.mode != Mode::kTraining)
    throw FieldError(s, "strategy.overlap", "puts a forward beside a backward: needs workload.mode training");
  if (s.dense_layers > 0 && s.dense_ffn <= 0 && s.heads <= 0)
    throw FieldError(s, "model.dense_layers", "need something to compute: model.dense_ffn > 0 or model.heads > 0");
  if (s.heads > 0 && s.sequence_length <= 0)
    throw FieldError(s, "model.heads", "costs attention over sequences: needs workload.sequence_length > 0");
  if (s.kv_heads > 0 && s.heads == 0)
    throw FieldError(s, "model.kv_heads", "groups attention heads: needs model.heads > 0");
  if (s.kv_heads > 0 && s.heads % s.kv_heads != 0)
    throw FieldError(s, "model.kv_heads", "must divide model.heads (" + std::to_string(s.heads) + ")");
  if (s.head_dim > 0 && s.heads == 0)
    throw FieldError(s, "model.head_dim", "sizes attention heads: needs model.heads > 0");
  if (s.attention_dtype != Dtype::kBf16 && s.heads == 0)
    throw FieldError(s, "model.attention_dtype", "sets the attention's projections: needs model.heads > 0");
  if (s.kv_lora_rank > 0 && s.heads == 0)
    throw FieldError(s, "model.kv_lora_rank", "makes attention latent (MLA): needs model.heads > 0");
  if (s.kv_lora_rank > 0 && s.kv_heads > 0)
    throw FieldError(s, "model.kv_heads", "groups key/value heads; with MLA (model.kv_lora_rank) every head reads one latent");
  const std::string latent_only = "shapes multi-head latent attention: needs model.kv_lora_rank > 0";
  if (s.kv_lora_rank == 0 && s.q_lora_rank > 0) throw FieldError(s, "model.q_lora_rank", latent_only);
  if (s.kv_lora_rank == 0 && s.rope_head_dim > 0) throw FieldError(s, "model.rope_head_dim", latent_only);
  if (s.rebalance_cost != RebalanceCost::kFree && !s.UsesEplb())
    throw FieldError(s, "strategy.rebalance_cost", "prices EPLB's rebalances: needs strategy.placement eplb or eplb-hierarchical");
  if (s.recompute && s.mode != Mode::kTraining)
    throw FieldError(s, "workload.recompute", "recomputes the experts' forward in the backward: needs workload.mode training");
  if (s.overlap == Overlap::kTwoBatch && s.tokens_per_gpu < 2)
    throw FieldError(s, "strategy.overlap", "two micro-batches need workload.tokens_per_gpu >= 2");
  if (s.burst_every > 0 && s.burst_share * s.top_k > 1.0 + 1e-12) {
    throw FieldError(s, "workload.burst", "burst share exceeds 1/model.top_k = " + FormatG(1.0 / s.top_k) +
                                              ": a token picks an expert at most once");
  }
  if (token_trace) {
    // The trace fixes every token's experts: nothing may reshape them.
    const std::string why = "a per-token routing trace (" + routing_key + ") fixes each token's experts: ";
    if (s.node_limit > 0) throw FieldError(s, "strategy.node_limit", why + "a node limit cannot apply");
    if (s.burst_every > 0) throw FieldError(s, "workload.burst", why + "bursts cannot apply");
    if (s.balance > 0) throw FieldError(s, "workload.balance", why + "balance cannot apply");
  }
  // redundant_experts is EPLB's budget; other placements use no copies (so that
  // `epsim compare --vary placement=contiguous,eplb` can fix the budget for all variants).
  if (s.UsesEplb()) {
    const int64_t copies = static_cast<int64_t>(s.num_experts) + s.redundant_experts;
    if (copies < s.gpus || copies % s.gpus != 0) {
      throw FieldError(s, SetByUser(s, "strategy.redundant_experts") ? "strategy.redundant_experts" : "strategy.placement",
                       std::string(NameOf(PlacementPolicyNames(), s.placement)) +
                           " needs experts + redundant experts (" + std::to_string(copies) +
                           ") to be a multiple of workload.gpus (" + std::to_string(s.gpus) + ")");
    }
  }
  if (s.placement == PlacementPolicy::kEplb && s.node_limit > 0) {
    throw FieldError(s, "strategy.node_limit",
                     "a node limit with flat eplb is not modelled (an expert's copies may "
                     "land on several nodes); use strategy.placement eplb-hierarchical, "
                     "which keeps each expert's copies in one node");
  }
  // Hierarchical EPLB keeps an expert's copies in one node, however many GPUs there are.
  if (s.node_limit > 0 && s.gpus > s.num_experts && s.placement != PlacementPolicy::kEplbHierarchical)
    throw FieldError(s, "strategy.node_limit", "needs each expert on one GPU (no more GPUs than experts)");
  if (s.gpus > s.num_experts && s.gpus % s.num_experts != 0) {
    throw FieldError(s, "workload.gpus", "with more GPUs than experts (" + std::to_string(s.num_experts) +
                                             "), GPUs must be a multiple of experts");
  }
}

// The most experts `node_limit` NVLink domains hold, so that a token can find top_k of them.
int64_t ExpertsOnLargestDomains(const Scenario& s, int domain) {
  const int domains = (s.gpus + domain - 1) / domain;
  std::vector<int64_t> per_domain(domains, 0);
  if (s.placement == PlacementPolicy::kEplbHierarchical) {
    std::fill(per_domain.begin(), per_domain.end(), s.num_experts / domains);  // one group each
  } else {
    const Placement placement = s.placement == PlacementPolicy::kRoundRobin
                                    ? Placement::RoundRobin(s.num_experts, s.gpus)
                                    : Placement::Contiguous(s.num_experts, s.gpus);
    for (int e = 0; e < s.num_experts; ++e) ++per_domain[placement.Replicas(e)[0] / domain];
  }
  std::sort(per_domain.rbegin(), per_domain.rend());
  int64_t most = 0;
  for (int i = 0; i < std::min(s.node_limit, domains); ++i) most += per_domain[i];
  return most;
}

// Memory a run needs, estimated before anything is allocated: flows per all-to-all times
// what one flow costs (measured: about 200 B per flow for the analytic engine at 8192
// GPUs, SimGrid 2-3 KB per flow in flight). A source reaches at most min(P - 1, E, T k)
// GPUs (with replicated experts, one copy per expert). `engine: auto` is costed as the fast
// path: it runs SimGrid only where the replay takes seconds, a few thousand flows.
double EstimatedMemoryBytes(const Scenario& s) {
  const double reach = std::min({static_cast<double>(s.gpus - 1), static_cast<double>(s.num_experts),
                                 static_cast<double>(s.tokens_per_gpu) * s.top_k});
  const double flows = static_cast<double>(s.gpus) * std::max(reach, 1.0);
  const double per_flow = s.engine == Engine::kSimGrid ? 4000.0 : 250.0;
  // Each further layer of a stack keeps its own routing plan (about 64 B per flow).
  return 64e6 + flows * per_flow + 64.0 * flows * (s.layers - 1) + 16.0 * s.gpus * s.num_experts * s.layers;
}

// The limit: $EPSIM_MAX_MEMORY_GB, or 75% of this machine's memory.
double MemoryLimitBytes() {
  double gb = 0;
  if (const char* text = std::getenv("EPSIM_MAX_MEMORY_GB"); text != nullptr && ParseFiniteDouble(text, &gb) && gb > 0)
    return gb * 1e9;
  return 0.75 * static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
}

// Bytes of expert weights (gate, up, down in bf16) on the busiest GPU of a placement policy.
double ExpertWeightBytesPerGpu(const Scenario& s, const Topology& t) {
  const double per_expert = 3.0 * s.hidden * s.expert_ffn * 2;
  if (s.parallelism == Parallelism::kTensor)
    return (s.num_experts + s.shared_experts) * per_expert / DomainGpus(s, t);
  const int copies = s.UsesEplb()
                         ? (s.num_experts + s.redundant_experts) / s.gpus
                         : (s.num_experts + s.gpus - 1) / s.gpus;
  return (std::max(copies, 1) + s.shared_experts) * per_expert;
}

// The checks that need the topology and the profile.
// An implementation named by strategy.comm must be able to run the algorithm's messages
// (strategy.comm auto always picks one that can, sim/traffic/comm_model.h).
void CheckCommFitsAlgorithm(const Scenario& s, int domain_gpus) {
  const bool per_expert = SendsPerExpert(s.a2a);
  if (s.Implementation() == CommImpl::kDeepEpNormal && s.comm_sms == 1)
    throw FieldError(s, "strategy.comm_sms", "DeepEP's normal kernels pair their SMs as senders and receivers: 0 "
                                             "(the default 24) or at least 2");
  switch (s.comm) {
    case CommImpl::kAuto:
      return;
    case CommImpl::kNccl:
      if (per_expert && s.parallelism == Parallelism::kExpert)
        throw FieldError(s, "strategy.comm", "nccl sends one message per pair of GPUs, not one per (token, expert): "
                                             "strategy.a2a direct or hierarchical");
      return;
    case CommImpl::kDeepEpNormal:
    case CommImpl::kDeepEpLowLatency:
      if (s.parallelism == Parallelism::kTensor)
        throw FieldError(s, "strategy.comm", "tensor parallelism's all-gather and reduce-scatter run on nccl");
      if (s.comm == CommImpl::kDeepEpLowLatency && !per_expert)
        throw FieldError(s, "strategy.comm", "DeepEP's low-latency kernels send one message per (token, expert): "
                                             "strategy.a2a low-latency or rdma-only");
      if (s.comm == CommImpl::kDeepEpNormal && per_expert)
        throw FieldError(s, "strategy.comm", "DeepEP's normal kernels send each token once per GPU: "
                                             "strategy.a2a hierarchical (or direct inside one NVLink domain)");
      if (s.comm == CommImpl::kDeepEpNormal && s.a2a == A2aAlgorithm::kDirect && s.gpus > domain_gpus)
        throw FieldError(s, "strategy.comm", "DeepEP's normal kernels cross NVLink domains hierarchically: "
                                             "strategy.a2a hierarchical");
      return;
  }
}

// fp8 GEMMs (the experts', or the attention's projections) need a model that knows the
// device's fp8 rate.
void CheckFp8Gemms(const SimulationInputs& in) {
  const Scenario& s = in.scenario;
  for (const auto& [key, dtype] : {std::make_pair("model.expert_dtype", s.expert_dtype),
                                   std::make_pair("model.attention_dtype", s.attention_dtype)}) {
    if (dtype != Dtype::kFp8) continue;
    const OpModel& expert = in.profile.Op("expert");
    if (!expert.IsGroupedGemm())
      throw FieldError(s, key,
                       "profile " + in.profile.name + "'s expert model (" + expert.form +
                           ") has one rate, measured in bf16: fp8 GEMMs need a grouped_gemm model with peak_fp8_TFLOPs");
    if (expert.gemm.peak_fp8_Fps <= 0)
      throw FieldError(s, key,
                       "profile " + in.profile.name + " (" + in.profile.device_name + ") has no fp8 peak: the device has no "
                       "fp8 tensor cores");
  }
}

void CheckScenarioOnInputs(const SimulationInputs& in) {
  const Scenario& s = in.scenario;
  CheckFp8Gemms(in);
  const Topology& t = in.topology;
  const int domain = t.scale_up.domain_gpus;
  const std::string whole_domains = "needs whole NVLink domains: workload.gpus must be a multiple of " +
                                    std::to_string(domain);
  if (s.placement == PlacementPolicy::kEplbHierarchical) {
    const int d = std::max(1, DomainGpus(s, t));
    if (s.gpus % d != 0) {
      throw FieldError(s, "strategy.placement",
                       "needs whole NVLink domains: workload.gpus (" + std::to_string(s.gpus) +
                           ") must be a multiple of " + std::to_string(d));
    }
    // E + R a multiple of the GPUs (above) and E of the domains: each domain then has
    // R / domains redundant slots.
    const int domains = s.gpus / d;
    if (s.num_experts % domains != 0) {
      throw FieldError(s, "strategy.placement",
                       "puts one group of contiguous experts in each NVLink domain: model.experts (" +
                           std::to_string(s.num_experts) + ") must be a multiple of the " +
                           std::to_string(domains) + " domains (workload.gpus " + std::to_string(s.gpus) +
                           " / " + std::to_string(d) + " GPUs per domain)");
    }
  }
  if (s.parallelism == Parallelism::kTensor && s.gpus > domain && s.gpus % domain != 0)
    throw FieldError(s, "strategy.parallelism", whole_domains);
  if (s.overlap != Overlap::kNone && s.parallelism == Parallelism::kTensor)
    throw FieldError(s, "strategy.overlap", "overlap is modelled for expert parallelism, not strategy.parallelism tp");
  if (s.a2a == A2aAlgorithm::kHierarchical && s.gpus > domain && s.gpus % domain != 0)
    throw FieldError(s, "strategy.a2a", whole_domains);
  if (s.a2a == A2aAlgorithm::kRdmaOnly && t.scale_out.nics_per_node == 0)
    throw FieldError(s, "strategy.a2a", "topology '" + t.name + "' has no scale_out fabric");
  if (s.a2a == A2aAlgorithm::kRdmaOnly && (t.scale_out.rail_only || t.scale_out.planes > 1))
    throw FieldError(s, "strategy.a2a", "rdma-only sends every message over the NICs, and topology '" + t.name +
                                            (t.scale_out.rail_only ? "' is rail-only: no route between rails"
                                                                   : "' is multi-plane: no route between planes"));
  CheckCommFitsAlgorithm(s, domain);
  CheckFaults(s, t);
  if (s.node_limit > 0 && s.parallelism == Parallelism::kExpert) {
    const int64_t reachable = ExpertsOnLargestDomains(s, DomainGpus(s, t));
    if (reachable < s.top_k) {
      throw FieldError(s, "strategy.node_limit",
                       "its NVLink domains hold at most " + std::to_string(reachable) +
                           " experts, fewer than model.top_k = " + std::to_string(s.top_k));
    }
  }
  const double need_bytes = EstimatedMemoryBytes(s);
  if (need_bytes > MemoryLimitBytes()) {
    throw FieldError(s, "workload.gpus",
                     StrFormat("this run would need about %.3g GB of memory (limit %.3g GB; raise it with "
                               "EPSIM_MAX_MEMORY_GB%s)",
                               need_bytes / 1e9, MemoryLimitBytes() / 1e9,
                               s.engine == Engine::kSimGrid ? ", or use --engine analytic" : ""));
  }
  const double weight_bytes = ExpertWeightBytesPerGpu(s, t);
  if (weight_bytes > in.profile.memory_bytes) {
    const auto [file, key] = FieldOrigin(s, "model.experts");
    const std::string where = file == kCommandLine ? "command line (" + key + ")" : DisplayPath(file);
    throw ConfigError(DisplayPath(in.profile.file), "device.memory", StrFormat("%.3g GB", in.profile.memory_bytes / 1e9),
                      StrFormat("expert weights need %.3g GB per GPU with %s (model.experts %d, placement %s)",
                                weight_bytes / 1e9, where.c_str(), s.num_experts,
                                NameOf(PlacementPolicyNames(), s.placement)));
  }
}

}  // namespace

bool UsesMeasuredAllToAll(const Profile& profile) {
  const AllToAllModel& a = profile.a2a;
  return a.present && a.skipped.empty() && a.backend == "nccl" && a.bandwidth_Bps > 0;
}

int DomainGpus(const Scenario& scenario, const Topology& topology) {
  return std::min(topology.scale_up.domain_gpus, scenario.gpus);
}

SimulationInputs ResolveInputs(const Scenario& scenario) {
  CheckScenarioFields(scenario);
  SimulationInputs in;
  in.scenario = scenario;
  const auto [topology_file, topology_key] = FieldOrigin(scenario, "topology");
  in.topology = LoadTopology(ResolveDataFile("topologies", scenario.topology, topology_file, topology_key),
                             scenario.nodes);
  const auto [gpus_file, gpus_key] = FieldOrigin(scenario, "workload.gpus");
  CheckGpusFit(in.topology, scenario.gpus, gpus_file, gpus_key);
  // The switches the run's nodes need, against the radix: a fabric nobody can build is refused.
  const int nodes_used = (scenario.gpus + in.topology.gpus_per_node - 1) / in.topology.gpus_per_node;
  const std::string radix_problem = RadixProblem(in.topology, ShapeFabric(in.topology, nodes_used));
  if (!radix_problem.empty()) {
    const bool rail_only = in.topology.scale_out.rail_only;
    throw ConfigError(DisplayPath(in.topology.source_file), rail_only ? "scale_out.rail_only" : "scale_out.radix",
                      rail_only ? "true" : std::to_string(in.topology.scale_out.radix),
                      radix_problem + " (" + std::to_string(scenario.gpus) + " GPUs on " + std::to_string(nodes_used) +
                          " nodes)");
  }
  in.scenario.profile = scenario.profile.empty() ? in.topology.gpu : scenario.profile;
  const auto [profile_file, profile_key] = FieldOrigin(scenario, "profile");
  in.profile = LoadProfile(ResolveDataFile("calibrate/profiles", in.scenario.profile, profile_file, profile_key));
  CheckScenarioOnInputs(in);
  if (UsesMeasuredAllToAll(in.profile)) {
    // The NVLink rate the profile's device reached; a rate above the line rate was measured
    // on another fabric.
    const double measured = in.profile.a2a.bandwidth_Bps;
    ScaleUp& up = in.topology.scale_up;
    if (measured > up.line_rate_Bps) {
      throw ConfigError(DisplayPath(in.profile.file), "operations.a2a.bandwidth_GBps", FormatG(measured / 1e9),
                        "more than topology " + in.topology.name + "'s NVLink line rate (" +
                            FormatG(up.line_rate_Bps / 1e9) + " GB/s): measured on another device?");
    }
    up.bandwidth_Bps = measured;
    up.efficiency = measured / up.line_rate_Bps;
  }
  return in;
}

}  // namespace epsim
