// epsim report: the terminal report (see report.h).
#include "sim/report/report.h"

#include <string>

#include "common/numbers.h"
#include "sim/config/data_files.h"
#include "sim/report/version.h"
#include "sim/traffic/comm_model.h"

namespace epsim {
namespace {

std::string TopologyLine(const Topology& t, int gpus) {
  std::string line = StrFormat("%s (%s): %d GPUs of %d nodes x %d, NVLink %.4g GB/s per direction (%.4g x %.3g) in "
                               "domains of %d",
                               t.name.c_str(), DisplayPath(t.source_file).c_str(), gpus, t.nodes, t.gpus_per_node,
                               t.scale_up.bandwidth_Bps / 1e9, t.scale_up.line_rate_Bps / 1e9, t.scale_up.efficiency,
                               t.scale_up.domain_gpus);
  if (t.scale_out.nics_per_node > 0) {
    line += StrFormat(", %d x %.4g GB/s NICs per node (%.4g x %.3g), %s, leaf oversubscription %g:1",
                      t.scale_out.nics_per_node, t.scale_out.nic_bandwidth_Bps / 1e9,
                      t.scale_out.nic_line_rate_Bps / 1e9, t.scale_out.efficiency,
                      t.scale_out.rail_optimized ? "rail-optimized" : "not rail-optimized", t.scale_out.oversubscription);
    if (t.NicsPerGpu() > 1) line += StrFormat(" (%d per GPU, each flow striped over them)", t.NicsPerGpu());
    const FabricShape f = ShapeFabric(t, (gpus + t.gpus_per_node - 1) / t.gpus_per_node);
    if (t.scale_out.planes > 1) {
      line += StrFormat(", %d planes of %d leaves on %d spines each (cross-plane flows relayed over NVLink)", f.pods,
                        f.leaves_per_pod, f.spines_per_leaf);
    } else if (t.scale_out.rail_only) {
      line += ", rail-only (cross-rail flows relayed over NVLink)";
    } else if (f.pods > 1) {
      line += StrFormat(", three tiers: %d pods of %d leaves on %d spines each, %d core switches (spine "
                        "oversubscription %g:1)",
                        f.pods, f.leaves_per_pod, f.spines_per_leaf, f.cores(), t.scale_out.spine_oversubscription);
    }
  }
  return line;
}

// How the profile prices the experts (the larger part of a step's compute) and the floors
// of the other phases: where the compute constants came from.
std::string ComputeLine(const SimulationInputs& in) {
  const Profile& p = in.profile;
  const OpModel& e = p.Op("expert");
  const bool fp8 = in.scenario.expert_dtype == Dtype::kFp8;
  std::string line;
  if (e.IsGroupedGemm()) {
    const GroupedGemmModel& g = e.gemm;
    const GemmDtype dtype = fp8 ? GemmDtype::kFp8 : GemmDtype::kBf16;
    line = StrFormat("experts as grouped GEMMs, %d x %d tiles on %d SMs, %s at %.3g of %.4g TFLOP/s at long K "
                     "(half of that at K %.0f), %.3g us per launch",
                     g.row_tile, g.col_tile, g.sms, fp8 ? "fp8" : "bf16", g.Efficiency(dtype), g.PeakFps(dtype) / 1e12,
                     g.k_half, e.fixed_s * 1e6);
  } else {
    line = StrFormat("experts as one roofline per expert, %.4g TFLOP/s", e.flop_rate_Fps / 1e12);
  }
  line += StrFormat("; floors route %.3g, permute %.3g, combine %.3g us; %s profile",
                    p.Op("route").fixed_s * 1e6, p.Op("permute").fixed_s * 1e6, p.Op("combine").fixed_s * 1e6,
                    p.source == "measured" ? "measured" : "datasheet (cited in its file)");
  return line;
}

// The all-to-all's implementation and cost terms, and its bytes per token on the wire.
std::string CommLine(const SimulationInputs& in) {
  const CommModel dispatch = CommModelFor(in, Phase::kDispatch), combine = CommModelFor(in, Phase::kCombine);
  return DescribeCommModel(dispatch, combine) +
         StrFormat("; %.0f B per dispatched and %.0f B per combined token on the wire",
                   WireBytesPerToken(in, Phase::kDispatch), WireBytesPerToken(in, Phase::kCombine));
}

// The stack a step runs through: "1 MoE layer", "3 dense + 58 MoE layers".
std::string StackText(const Scenario& s) {
  return (s.dense_layers > 0 ? StrFormat("%d dense + ", s.dense_layers) : std::string()) +
         StrFormat("%d MoE layer%s", s.layers, s.layers + s.dense_layers > 1 ? "s" : "");
}

constexpr char kHeader[] =
    "#  step     time    route dispatch   expert  combine    stall    stall    stall    token   expert    dropped     drop   a2a disp   a2a comb\n"
    "#           (ms)     (ms)     (ms)     (ms)     (ms) min (ms) med (ms) max (ms)     skew     skew   (tokens) fraction (GB/s/GPU) (GB/s/GPU)\n";

std::string Row(const std::string& label, double time, double route, double dispatch, double expert,
                double combine, double smin, double smed, double smax, double tskew, double eskew,
                double dropped, double fraction, double drate, double crate) {
  return StrFormat("%7s %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %10.0f %8.5f %10.1f %10.1f\n",
                label.c_str(), time * 1e3, route * 1e3, dispatch * 1e3, expert * 1e3, combine * 1e3,
                smin * 1e3, smed * 1e3, smax * 1e3, tskew, eskew, dropped, fraction, drate, crate);
}

// The model line's attention: its heads and kind (multi-head, grouped-query or latent) and
// what each token attends to; "" when not costed.
std::string AttentionText(const Scenario& s) {
  if (s.heads <= 0) return "";
  const int d = s.head_dim > 0 ? s.head_dim : static_cast<int>(s.hidden / s.heads);
  const std::string kind =
      s.kv_lora_rank > 0
          ? StrFormat("MLA %d heads x %d (+%d RoPE), latent %d%s", s.heads, d, s.rope_head_dim, s.kv_lora_rank,
                      s.q_lora_rank > 0 ? StrFormat(" (queries %d)", s.q_lora_rank).c_str() : "")
          : StrFormat("%d heads (%d KV) x %d", s.heads, s.kv_heads > 0 ? s.kv_heads : s.heads, d);
  return StrFormat(", attention %s%s over %s %d tokens", kind.c_str(),
                   s.attention_dtype == Dtype::kFp8 ? " (fp8 projections)" : "",
                   s.mode == Mode::kDecode ? "a KV cache of" : "sequences of", s.sequence_length);
}

}  // namespace

std::string FormatReport(const SimulationInputs& in, const SimulationResult& r) {
  const Scenario& s = in.scenario;
  std::string out;
  out += StrFormat("# epsim %s: expert-parallel step replay\n", kEpsimVersion);
  out += StrFormat("# scenario  : %s (%s)\n", s.name.c_str(), s.file.empty() ? "flags" : DisplayPath(s.file).c_str());
  out += "# topology  : " + TopologyLine(in.topology, s.gpus) + "\n";
  out += StrFormat("# profile   : %s (%s), %s, source: %s\n", in.profile.name.c_str(),
                DisplayPath(in.profile.file).c_str(), in.profile.device_name.c_str(), in.profile.source.c_str());
  out += "# compute   : " + ComputeLine(in) + "\n";
  out += "# network   : " + r.network_model + "\n";
  out += "# all-to-all: " + CommLine(in) + "\n";
  out += StrFormat("# model     : hidden %lld, expert FFN %lld, %d routed experts + %d shared, top-%d, "
                "experts %s, dispatch %s, combine %s%s\n",
                static_cast<long long>(s.hidden), static_cast<long long>(s.expert_ffn),
                s.num_experts, s.shared_experts, s.top_k, NameOf(DtypeNames(), s.expert_dtype),
                NameOf(DtypeNames(), s.dispatch_dtype), NameOf(DtypeNames(), s.combine_dtype),
                (std::string(s.layers + s.dense_layers > 1 ? ", " + StackText(s) : "") +
                 (s.dense_layers > 0 ? StrFormat(" (dense FFN %lld)", static_cast<long long>(s.dense_ffn)) : "") +
                 AttentionText(s)).c_str());
  out += StrFormat("# workload  : %d GPUs x %d tokens, routing %s%s, capacity factor %s, %d %ssteps, "
                "seed %llu\n",
                s.gpus, s.tokens_per_gpu,
                (s.LayerRoutingGiven() ? "per layer " + s.RoutingText() : s.RoutingText()).c_str(),
                (std::string(s.drift_steps > 0 ? StrFormat(" (popularity redrawn every %d steps)", s.drift_steps) : "") +
                 (s.token_sigma > 0 ? StrFormat(", tokens per GPU log-normal sigma %g", s.token_sigma) : "") +
                 (s.balance > 0 ? StrFormat(", balance %g", s.balance) : "") +
                 (s.burst_every > 0 ? StrFormat(", burst every %d steps (one expert +%g of assignments)", s.burst_every, s.burst_share) : "")).c_str(),
                s.capacity_factor > 0 ? StrFormat("%g", s.capacity_factor).c_str() : "none (dropless)",
                s.steps,
                s.mode == Mode::kTraining ? (s.recompute ? "training (forward + backward, experts recomputed) " : "training (forward + backward) ")
                : s.mode == Mode::kDecode ? "decode "
                                          : "",
                static_cast<unsigned long long>(s.seed));
  std::string placement = NameOf(PlacementPolicyNames(), s.placement);
  if (s.UsesEplb()) {
    placement += StrFormat(" (%d redundant experts, plan from the previous %d steps)",
                        s.redundant_experts, s.rebalance_interval);
  }
  if (s.parallelism == Parallelism::kTensor) {
    out += StrFormat("# strategy  : tensor parallelism inside each NVLink domain (all-gather, reduce-scatter; "
                  "domains data-parallel), drops by %s, engine %s\n",
                  NameOf(DropPolicyNames(), s.drop_policy), NameOf(EngineNames(), s.engine));
  } else {
    out += StrFormat("# strategy  : all-to-all %s%s, placement %s, drops by %s, node limit %s, overlap %s, engine %s\n",
                     NameOf(A2aAlgorithmNames(), s.a2a), s.pxn ? " with PXN" : "", placement.c_str(), NameOf(DropPolicyNames(), s.drop_policy),
                     s.node_limit > 0 ? std::to_string(s.node_limit).c_str() : "none",
                     s.overlap == Overlap::kTwoBatch          ? "two micro-batches"
                     : s.overlap == Overlap::kForwardBackward ? "forward beside backward (micro-batches 0 and 1)"
                                                              : "none",
                     NameOf(EngineNames(), s.engine));
  }
  if (!s.faults.empty()) {
    std::string faults;
    for (const Fault& f : s.faults) faults += (faults.empty() ? "" : "; ") + DescribeFault(f);
    out += "# faults    : " + faults + " (the slowdown: epsim compare SCENARIO --vary fault=none,...)\n";
  }
  if (s.mode == Mode::kTraining && s.overlap == Overlap::kForwardBackward) {
    out += "# time = forward beside backward in one replay; phases end with the backward's tasks in their\n"
           "# slots, on the critical path; stall = time a GPU neither computes nor moves its own data;\n"
           "# a2a = bytes a GPU sent to others / its phase time\n";
  } else if (s.mode == Mode::kTraining) {
    out += "# time = forward + backward; phases and a2a of the forward pass, on its critical path (the\n"
           "# backward's below); stall = time a GPU neither computes nor moves its own data, both passes;\n"
           "# a2a = bytes a GPU sent to others / its phase time\n";
  } else {
    out += "# phases on the critical path (the GPU that finished last); stall = time a GPU neither\n"
           "# computes nor moves its own data; a2a = bytes a GPU sent to others / its phase time\n";
  }
  out += kHeader;
  for (const StepRecord& st : r.steps) {
    out += Row(std::to_string(st.step), st.step_time_s, st.route_s, st.dispatch_s, st.expert_s,
               st.combine_s, st.stall_min_s, st.stall_median_s, st.stall_max_s, st.token_skew,
               st.expert_skew, static_cast<double>(st.dropped),
               st.assignments ? static_cast<double>(st.dropped) / st.assignments : 0,
               st.dispatch_GBps, st.combine_GBps);
  }
  const Summary& m = r.summary;
  out += Row("mean", m.step_time_s, m.route_s, m.dispatch_s, m.expert_s, m.combine_s, m.stall_min_s,
             m.stall_median_s, m.stall_max_s, m.token_skew, m.expert_skew,
             static_cast<double>(m.dropped_tokens) / r.steps.size(), m.dropped_fraction,
             m.dispatch_GBps, m.combine_GBps);
  if (m.training && s.overlap == Overlap::kForwardBackward) {
    out += StrFormat("# training, the forward beside the backward: the last forward task ended at %.3f ms, the last "
                     "backward task at %.3f ms (means)\n",
                     m.forward_s * 1e3, m.backward.time_s * 1e3);
  } else if (m.training) {
    const PassTimes& b = m.backward;
    out += StrFormat("# training: forward %.3f + backward %.3f ms; backward on its critical path: %s %.3f, %s %.3f, "
                     "%s %.3f, %s %.3f ms (means)\n",
                     m.forward_s * 1e3, b.time_s * 1e3, SlotName(Pass::kBackward, "route").c_str(), b.route_s * 1e3,
                     SlotName(Pass::kBackward, "dispatch").c_str(), b.dispatch_s * 1e3,
                     SlotName(Pass::kBackward, "expert").c_str(), b.expert_s * 1e3,
                     SlotName(Pass::kBackward, "combine").c_str(), b.combine_s * 1e3);
  }
  out += StrFormat("# per GPU and step, besides compute: waiting for peers %.3f ms, fixed and per-message costs %.3f ms, exposed "
                   "communication %.3f ms, contention %.3f ms (means)\n",
                   m.wait_peers_s * 1e3, m.fixed_cost_s * 1e3, m.exposed_comm_s * 1e3, m.contention_s * 1e3);
  auto split = [](const PhaseSplit& p) {
    return StrFormat("fixed+per-message %.3f + moving data %.3f + waiting %.3f ms", p.fixed_s * 1e3, p.link_s * 1e3,
                     p.wait_s * 1e3);
  };
  out += "# critical GPU's calls: dispatch " + split(m.dispatch_split) + "; combine " + split(m.combine_split) +
         " (means)\n";
  out += StrFormat("# step time p50 %.3f ms, p99 %.3f ms over %zu steps; dropped %lld of %lld "
                "assignments (%.3f%%)\n",
                m.step_time_p50_s * 1e3, m.step_time_p99_s * 1e3, r.steps.size(),
                static_cast<long long>(m.dropped_tokens), static_cast<long long>(m.assignments),
                100.0 * m.dropped_fraction);
  if (s.layers + s.dense_layers > 1) {
    out += StrFormat("# stalls over the stack: GPU %d stalls most, %.3f ms per step, %.3f ms of it in layer %d (gpus.csv "
                     "has every GPU's per layer)\n",
                     m.most_stalled_gpu, m.stall_max_s * 1e3, m.its_worst_layer_stall_s * 1e3, m.its_worst_layer);
  }
  if (s.rebalance_cost != RebalanceCost::kFree) {
    const bool blocking = s.rebalance_cost == RebalanceCost::kBlocking;
    out += m.rebalances == 0
               ? std::string("# rebalancing: no rebalance after step 0 moved weights\n")
               : StrFormat("# rebalancing: %d rebalance%s moved %.4g GB of expert weights, %.3f ms each on average, %s "
                           "step%s %s (%s)\n",
                           m.rebalances, m.rebalances == 1 ? "" : "s", m.rebalance_bytes / 1e9, m.rebalance_s / m.rebalances * 1e3,
                           blocking ? "before" : "beside", m.rebalances == 1 ? "" : "s", RebalancedSteps(m).c_str(),
                           blocking ? "blocking"
                                    : "overlapped: each layer's while its experts compute, the new placement a step later");
  }
  if (s.mode == Mode::kDecode) {
    out += StrFormat("# decode: time per output token %.3f ms (a step: each GPU's %d tokens its sequences' next, "
                     "through %s)\n",
                     m.step_time_s * 1e3, s.tokens_per_gpu, StackText(s).c_str());
  }
  out += StrFormat("# throughput: %.0f tokens per second per GPU through %s (%s)\n", m.tokens_per_s_per_gpu,
                   StackText(s).c_str(), s.mode == Mode::kTraining ? "forward and backward"
                                         : s.mode == Mode::kDecode ? "decode" : "forward");
  if (!m.busiest_links.empty()) {
    // Load = the link's bytes at its rate, against the mean step time (links.csv has them all).
    std::string links;
    for (const BusiestLink& b : m.busiest_links)
      links += StrFormat("%s%s %s %.3f ms (%.0f%%, up to %d flows)", links.empty() ? "" : "; ", b.tier.c_str(),
                         b.name.c_str(), b.load_s * 1e3, 100 * b.utilization, b.peak_flows);
    out += "# busiest link per tier (bytes / rate per step): " + links + "\n";
  }
  return out;
}

}  // namespace epsim
