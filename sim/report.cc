// epsim: terminal report and result files (see report.h).
#include "sim/report.h"

#include <cstdarg>
#include <cstdio>
#include <string>

#include "sim/data_files.h"
#include "sim/output_file.h"

namespace epsim {

const char kEpsimVersion[] = "0.1.0";

namespace {

std::string Format(const char* fmt, ...) {
  va_list args, copy;
  va_start(args, fmt);
  va_copy(copy, args);
  const int size = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string out(size > 0 ? size : 0, '\0');
  if (size > 0) std::vsnprintf(out.data(), size + 1, fmt, args);
  va_end(args);
  return out;
}

std::string TopologyLine(const Topology& t, int gpus) {
  std::string line = Format("%s (%s): %d GPUs of %d nodes x %d, NVLink %.0f GB/s per direction in "
                            "domains of %d",
                            t.name.c_str(), DisplayPath(t.source_file).c_str(), gpus, t.nodes, t.gpus_per_node,
                            t.scale_up.bandwidth_Bps / 1e9, t.scale_up.domain_gpus);
  if (t.scale_out.nics_per_node > 0) {
    line += Format(", %d x %.0f GB/s NICs per node, %s, leaf oversubscription %g:1",
                   t.scale_out.nics_per_node, t.scale_out.nic_bandwidth_Bps / 1e9,
                   t.scale_out.rail_optimized ? "rail-optimized" : "not rail-optimized",
                   t.scale_out.oversubscription);
  }
  return line;
}

constexpr char kHeader[] =
    "#  step     time    route dispatch   expert  combine    stall    stall    stall    token   expert    dropped     drop   a2a disp   a2a comb\n"
    "#           (ms)     (ms)     (ms)     (ms)     (ms) min (ms) med (ms) max (ms)     skew     skew   (tokens) fraction (GB/s/GPU) (GB/s/GPU)\n";

std::string Row(const std::string& label, double time, double route, double dispatch, double expert,
                double combine, double smin, double smed, double smax, double tskew, double eskew,
                double dropped, double fraction, double drate, double crate) {
  return Format("%7s %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %10.0f %8.5f %10.1f %10.1f\n",
                label.c_str(), time * 1e3, route * 1e3, dispatch * 1e3, expert * 1e3, combine * 1e3,
                smin * 1e3, smed * 1e3, smax * 1e3, tskew, eskew, dropped, fraction, drate, crate);
}

}  // namespace

std::string FormatReport(const SimulationInputs& in, const SimulationResult& r) {
  const Scenario& s = in.scenario;
  std::string out;
  out += Format("# epsim %s: expert-parallel step replay\n", kEpsimVersion);
  out += Format("# scenario  : %s (%s)\n", s.name.c_str(), s.file.empty() ? "flags" : DisplayPath(s.file).c_str());
  out += "# topology  : " + TopologyLine(in.topology, s.gpus) + "\n";
  out += Format("# profile   : %s (%s), %s, source: %s\n", in.profile.name.c_str(),
                DisplayPath(in.profile.file).c_str(), in.profile.device_name.c_str(), in.profile.source.c_str());
  out += "# network   : " + r.network_model + "\n";
  out += Format("# model     : hidden %lld, expert FFN %lld, %d routed experts + %d shared, top-%d, "
                "dispatch %s, combine %s\n",
                static_cast<long long>(s.hidden), static_cast<long long>(s.expert_ffn),
                s.num_experts, s.shared_experts, s.top_k, s.dispatch_dtype.c_str(),
                s.combine_dtype.c_str());
  out += Format("# workload  : %d GPUs x %d tokens, routing %s%s, capacity factor %s, %d steps, "
                "seed %llu\n",
                s.gpus, s.tokens_per_gpu, s.routing.ToString().c_str(),
                (std::string(s.drift_steps > 0 ? Format(" (popularity redrawn every %d steps)", s.drift_steps) : "") +
                 (s.token_sigma > 0 ? Format(", tokens per GPU log-normal sigma %g", s.token_sigma) : "") +
                 (s.balance > 0 ? Format(", balance %g", s.balance) : "") +
                 (s.burst_every > 0 ? Format(", burst every %d steps (one expert +%g of assignments)", s.burst_every, s.burst_share) : "")).c_str(),
                s.capacity_factor > 0 ? Format("%g", s.capacity_factor).c_str() : "none (dropless)",
                s.steps, static_cast<unsigned long long>(s.seed));
  std::string placement = s.placement;
  if (s.UsesEplb()) {
    placement += Format(" (%d redundant experts, plan from the previous %d steps)",
                        s.redundant_experts, s.rebalance_interval);
  }
  if (s.parallelism == "tp") {
    out += Format("# strategy  : tensor parallelism inside each NVLink domain (all-gather, reduce-scatter; "
                  "domains data-parallel), drops by %s, engine %s\n",
                  s.drop_policy.c_str(), s.engine.c_str());
  } else {
  out += Format("# strategy  : all-to-all %s, placement %s, drops by %s, node limit %s, overlap %s, engine %s\n",
                s.a2a.c_str(), placement.c_str(), s.drop_policy.c_str(),
                s.node_limit > 0 ? std::to_string(s.node_limit).c_str() : "none",
                s.overlap == "two-batch" ? "two micro-batches" : "none", s.engine.c_str());
  }
  out += "# phases on the critical path (the GPU that finished last); stall = time a GPU neither\n"
         "# computes nor moves its own data; a2a = bytes a GPU sent to others / its phase time\n";
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
  out += Format("# per GPU and step, besides compute: waiting for peers %.3f ms, exposed "
                "communication %.3f ms, contention %.3f ms (means)\n",
                m.wait_peers_s * 1e3, m.exposed_comm_s * 1e3, m.contention_s * 1e3);
  out += Format("# step time p50 %.3f ms, p99 %.3f ms over %zu steps; dropped %lld of %lld "
                "assignments (%.3f%%)\n",
                m.step_time_p50_s * 1e3, m.step_time_p99_s * 1e3, r.steps.size(),
                static_cast<long long>(m.dropped_tokens), static_cast<long long>(m.assignments),
                100.0 * m.dropped_fraction);
  return out;
}

std::string SummaryJson(const SimulationInputs& in, const SimulationResult& r) {
  const Summary& m = r.summary;
  const Scenario& s = in.scenario;
  std::string j = "{\n";
  auto num = [&](const char* key, double value, bool comma = true) {
    j += Format("  %s: %s%s\n", JsonString(key).c_str(), JsonNumber(value).c_str(), comma ? "," : "");
  };
  auto str = [&](const char* key, const std::string& value) {
    j += Format("  %s: %s,\n", JsonString(key).c_str(), JsonString(value).c_str());
  };
  str("epsim_version", kEpsimVersion);
  str("network_model", r.network_model);
  str("topology_file", DisplayPath(in.topology.source_file));
  str("profile_file", DisplayPath(in.profile.file));
  str("profile_source", in.profile.source);
  num("step_time_s", m.step_time_s);
  num("step_time_p50_s", m.step_time_p50_s);
  num("step_time_p99_s", m.step_time_p99_s);
  j += "  \"phases_s\": {\"route\": " + JsonNumber(m.route_s) + ", \"dispatch\": " +
       JsonNumber(m.dispatch_s) + ", \"expert\": " + JsonNumber(m.expert_s) +
       ", \"combine\": " + JsonNumber(m.combine_s) + "},\n";
  j += "  \"stall_s\": {\"min\": " + JsonNumber(m.stall_min_s) + ", \"median\": " +
       JsonNumber(m.stall_median_s) + ", \"max\": " + JsonNumber(m.stall_max_s) + "},\n";
  num("token_skew", m.token_skew);
  num("expert_skew", m.expert_skew);
  num("dropped_tokens", static_cast<double>(m.dropped_tokens));
  num("assignments", static_cast<double>(m.assignments));
  num("dropped_fraction", m.dropped_fraction);
  j += "  \"time_lost_s\": {\"waiting_for_peers\": " + JsonNumber(m.wait_peers_s) +
       ", \"exposed_communication\": " + JsonNumber(m.exposed_comm_s) +
       ", \"contention\": " + JsonNumber(m.contention_s) + "},\n";
  j += "  \"a2a_GBps_per_gpu\": {\"dispatch\": " + JsonNumber(m.dispatch_GBps) +
       ", \"combine\": " + JsonNumber(m.combine_GBps) + "},\n";
  j += "  \"scenario\": {";
  bool first = true;
  for (const auto& [key, value] : s.Fields()) {
    j += (first ? "" : ", ") + JsonString(key) + ": " + JsonString(value);
    first = false;
  }
  j += "}\n}\n";
  return j;
}

std::string StepsCsv(const SimulationResult& r) {
  std::string csv =
      "step,step_time_s,critical_gpu,route_s,dispatch_s,expert_s,combine_s,stall_min_s,"
      "stall_median_s,stall_max_s,token_skew,expert_skew,assignments,dropped_tokens,"
      "dispatch_GBps_per_gpu,combine_GBps_per_gpu\n";
  for (const StepRecord& s : r.steps) {
    csv += Format("%d,%.9g,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%lld,%lld,%.9g,%.9g\n",
                  s.step, s.step_time_s, s.critical_gpu, s.route_s, s.dispatch_s, s.expert_s,
                  s.combine_s, s.stall_min_s, s.stall_median_s, s.stall_max_s, s.token_skew,
                  s.expert_skew, static_cast<long long>(s.assignments),
                  static_cast<long long>(s.dropped), s.dispatch_GBps, s.combine_GBps);
  }
  return csv;
}

std::string GpusCsv(const SimulationInputs& in, const SimulationResult& r) {
  std::string csv =
      "step,gpu,node,route_s,dispatch_s,expert_s,combine_s,compute_s,comm_s,stall_s,end_s,"
      "wait_peers_s,exposed_comm_s,contention_s,"
      "expert_tokens,dropped_tokens,unique_tokens_received,node_tokens_sent,dispatch_sent_bytes,"
      "dispatch_recv_bytes,combine_sent_bytes,combine_recv_bytes,dispatch_GBps,combine_GBps\n";
  for (const GpuStepRecord& g : r.gpus) {
    csv += Format("%d,%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%lld,%lld,%lld,%lld,%.0f,%.0f,%.0f,%.0f,%.9g,%.9g\n",
                  g.step, g.gpu, in.topology.NodeOf(g.gpu), g.route_s, g.dispatch_s, g.expert_s,
                  g.combine_s, g.compute_s, g.comm_s, g.stall_s, g.end_s, g.wait_peers_s,
                  g.exposed_comm_s, g.contention_s,
                  static_cast<long long>(g.expert_tokens),
                  static_cast<long long>(g.dropped_tokens),
                  static_cast<long long>(g.unique_tokens_received),
                  static_cast<long long>(g.node_tokens_sent), g.dispatch_sent_bytes,
                  g.dispatch_recv_bytes, g.combine_sent_bytes, g.combine_recv_bytes,
                  g.dispatch_GBps, g.combine_GBps);
  }
  return csv;
}

std::string ExpertsCsv(const SimulationResult& r) {
  std::string csv = "step,expert,kept_tokens,dropped_tokens\n";
  for (const ExpertStepRecord& e : r.experts) {
    csv += Format("%d,%d,%lld,%lld\n", e.step, e.expert, static_cast<long long>(e.kept),
                  static_cast<long long>(e.dropped));
  }
  return csv;
}

void WriteResults(const std::string& dir, const SimulationInputs& in, const SimulationResult& r) {
  MakeDirectories(dir);
  WriteFileAtomically(dir + "/summary.json", SummaryJson(in, r));
  WriteFileAtomically(dir + "/steps.csv", StepsCsv(r));
  WriteFileAtomically(dir + "/gpus.csv", GpusCsv(in, r));
  WriteFileAtomically(dir + "/experts.csv", ExpertsCsv(r));
}

}  // namespace epsim
