// epsim report: result files (see result_files.h).
#include "sim/report/result_files.h"

#include <string>
#include <vector>

#include "common/files.h"
#include "common/json.h"
#include "common/numbers.h"
#include "sim/config/data_files.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_builder.h"
#include "sim/report/version.h"
#include "sim/traffic/comm_model.h"

namespace epsim {
namespace {

// The six columns of a GPU's time in its dispatch and combine calls (attribution.h).
std::string SplitColumns(const PhaseSplit& dispatch, const PhaseSplit& combine) {
  return StrFormat("%.9g,%.9g,%.9g,%.9g,%.9g,%.9g", dispatch.fixed_s, dispatch.link_s, dispatch.wait_s,
                   combine.fixed_s, combine.link_s, combine.wait_s);
}

}  // namespace

std::string SummaryJson(const SimulationInputs& in, const SimulationResult& r) {
  const Summary& m = r.summary;
  const Scenario& s = in.scenario;
  std::string j = "{\n";
  auto num = [&](const char* key, double value, bool comma = true) {
    j += StrFormat("  %s: %s%s\n", JsonString(key).c_str(), JsonNumber(value).c_str(), comma ? "," : "");
  };
  auto str = [&](const char* key, const std::string& value) {
    j += StrFormat("  %s: %s,\n", JsonString(key).c_str(), JsonString(value).c_str());
  };
  str("epsim_version", kEpsimVersion);
  str("engine", r.engine);
  str("network_model", r.network_model);
  str("topology_file", DisplayPath(in.topology.source_file));
  str("profile_file", DisplayPath(in.profile.file));
  str("profile_source", in.profile.source);
  str("mode", NameOf(ModeNames(), s.mode));
  num("step_time_s", m.step_time_s);
  num("step_time_p50_s", m.step_time_p50_s);
  num("step_time_p99_s", m.step_time_p99_s);
  // The forward pass's phases; in training the backward's as well, in the slots of
  // step_work.h (what each gradient mirrors).
  auto phases = [](const PassTimes& p) {
    return "{\"route\": " + JsonNumber(p.route_s) + ", \"dispatch\": " + JsonNumber(p.dispatch_s) +
           ", \"expert\": " + JsonNumber(p.expert_s) + ", \"combine\": " + JsonNumber(p.combine_s) + "}";
  };
  j += "  \"phases_s\": " + phases({m.forward_s, m.route_s, m.dispatch_s, m.expert_s, m.combine_s}) + ",\n";
  if (m.training) {
    num("forward_s", m.forward_s);
    num("backward_s", m.backward.time_s);
    j += "  \"backward_phases_s\": " + phases(m.backward) + ",\n";
  }
  j += "  \"stall_s\": {\"min\": " + JsonNumber(m.stall_min_s) + ", \"median\": " +
       JsonNumber(m.stall_median_s) + ", \"max\": " + JsonNumber(m.stall_max_s) + "},\n";
  num("tokens_per_s_per_gpu", m.tokens_per_s_per_gpu);
  if (s.mode == Mode::kDecode) num("time_per_output_token_s", m.step_time_s);
  if (s.rebalance_cost != RebalanceCost::kFree) {
    j += "  \"rebalances\": {\"count\": " + JsonNumber(m.rebalances) + ", \"bytes\": " + JsonNumber(m.rebalance_bytes) +
         ", \"time_s\": " + JsonNumber(m.rebalance_s) + ", \"steps\": [" + RebalancedSteps(m) + "]},\n";
  }
  num("token_skew", m.token_skew);
  num("expert_skew", m.expert_skew);
  num("dropped_tokens", static_cast<double>(m.dropped_tokens));
  num("assignments", static_cast<double>(m.assignments));
  num("dropped_fraction", m.dropped_fraction);
  j += "  \"time_lost_s\": {\"waiting_for_peers\": " + JsonNumber(m.wait_peers_s) +
       ", \"fixed_cost\": " + JsonNumber(m.fixed_cost_s) +
       ", \"exposed_communication\": " + JsonNumber(m.exposed_comm_s) +
       ", \"contention\": " + JsonNumber(m.contention_s) + "},\n";
  auto split = [](const PhaseSplit& p) {
    return "{\"fixed_cost\": " + JsonNumber(p.fixed_s) + ", \"moving_data\": " + JsonNumber(p.link_s) +
           ", \"waiting\": " + JsonNumber(p.wait_s) + "}";
  };
  j += "  \"critical_gpu_calls_s\": {\"dispatch\": " + split(m.dispatch_split) + ", \"combine\": " +
       split(m.combine_split) + "},\n";
  const CommModel dispatch = CommModelFor(in, Phase::kDispatch);
  str("communication", NameOf(CommImplNames(), dispatch.impl));
  str("communication_source", dispatch.source);
  j += "  \"a2a_GBps_per_gpu\": {\"dispatch\": " + JsonNumber(m.dispatch_GBps) +
       ", \"combine\": " + JsonNumber(m.combine_GBps) + "},\n";
  j += "  \"busiest_links\": {";
  for (size_t i = 0; i < m.busiest_links.size(); ++i) {
    const BusiestLink& b = m.busiest_links[i];
    j += (i ? ", " : "") + JsonString(b.tier) + ": {\"link\": " + JsonString(b.name) +
         ", \"load_s\": " + JsonNumber(b.load_s) + ", \"busy_s\": " + JsonNumber(b.busy_s) +
         ", \"utilization\": " + JsonNumber(b.utilization) + ", \"peak_flows\": " + JsonNumber(b.peak_flows) + "}";
  }
  j += "},\n";
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
      "dispatch_GBps_per_gpu,combine_GBps_per_gpu,dispatch_fixed_s,dispatch_link_s,dispatch_wait_s,"
      "combine_fixed_s,combine_link_s,combine_wait_s,forward_s,backward_s,backward_critical_gpu,"
      "backward_route_s,backward_dispatch_s,backward_expert_s,backward_combine_s,rebalance_s,rebalance_bytes\n";
  for (const StepRecord& s : r.steps) {
    csv += StrFormat("%d,%.9g,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%lld,%lld,%.9g,%.9g,%s,%.9g,%.9g,%d,"
                     "%.9g,%.9g,%.9g,%.9g,%.9g,%.0f\n",
                     s.step, s.step_time_s, s.critical_gpu, s.route_s, s.dispatch_s, s.expert_s,
                     s.combine_s, s.stall_min_s, s.stall_median_s, s.stall_max_s, s.token_skew,
                     s.expert_skew, static_cast<long long>(s.assignments),
                     static_cast<long long>(s.dropped), s.dispatch_GBps, s.combine_GBps,
                     SplitColumns(s.dispatch_split, s.combine_split).c_str(), s.forward_s, s.backward.time_s,
                     s.backward_critical_gpu, s.backward.route_s, s.backward.dispatch_s, s.backward.expert_s,
                     s.backward.combine_s, s.rebalance_s, s.rebalance_bytes);
  }
  return csv;
}

std::string GpusCsv(const SimulationInputs& in, const SimulationResult& r) {
  std::string csv =
      "step,gpu,node,route_s,dispatch_s,expert_s,combine_s,compute_s,comm_s,stall_s,end_s,"
      "wait_peers_s,fixed_cost_s,exposed_comm_s,contention_s,"
      "expert_tokens,dropped_tokens,unique_tokens_received,node_tokens_sent,dispatch_sent_bytes,"
      "dispatch_recv_bytes,combine_sent_bytes,combine_recv_bytes,dispatch_GBps,combine_GBps,"
      "dispatch_fixed_s,dispatch_link_s,dispatch_wait_s,combine_fixed_s,combine_link_s,combine_wait_s,pass,layer\n";
  for (const GpuStepRecord& g : r.gpus) {
    csv += StrFormat("%d,%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%lld,%lld,%lld,%lld,%.0f,%.0f,%.0f,%.0f,%.9g,%.9g,%s,%s,%d\n",
                  g.step, g.gpu, in.topology.NodeOf(g.gpu), g.route_s, g.dispatch_s, g.expert_s,
                  g.combine_s, g.compute_s, g.comm_s, g.stall_s, g.end_s, g.wait_peers_s, g.fixed_cost_s,
                  g.exposed_comm_s, g.contention_s,
                  static_cast<long long>(g.expert_tokens),
                  static_cast<long long>(g.dropped_tokens),
                  static_cast<long long>(g.unique_tokens_received),
                  static_cast<long long>(g.node_tokens_sent), g.dispatch_sent_bytes,
                  g.dispatch_recv_bytes, g.combine_sent_bytes, g.combine_recv_bytes,
                  g.dispatch_GBps, g.combine_GBps, SplitColumns(g.dispatch_split, g.combine_split).c_str(),
                  PassName(g.pass), g.layer);
  }
  return csv;
}

std::string ExpertsCsv(const SimulationResult& r) {
  std::string csv = "step,expert,kept_tokens,dropped_tokens,layer\n";
  for (const ExpertStepRecord& e : r.experts) {
    csv += StrFormat("%d,%d,%lld,%lld,%d\n", e.step, e.expert, static_cast<long long>(e.kept),
                     static_cast<long long>(e.dropped), e.layer);
  }
  return csv;
}

std::string LinksCsv(const SimulationInputs& in, const SimulationResult& r) {
  const FabricLayout layout(in.topology, in.scenario.gpus, SmBudgetOf(in));
  std::string csv = "step,link,tier,capacity_Bps,bytes,load_s,busy_s,peak_flows,pass,layer\n";
  for (const LinkStepRecord& l : r.links) {
    csv += StrFormat("%d,%s,%s,%.9g,%.0f,%.9g,%.9g,%d,%s,%d\n", l.step, layout.LinkName(l.link).c_str(),
                     layout.LinkTier(l.link), l.capacity_Bps, l.bytes, l.load_s, l.busy_s, l.peak_flows,
                     PassName(l.pass), l.layer);
  }
  return csv;
}

void WriteResults(const std::string& dir, const SimulationInputs& in, const SimulationResult& r) {
  MakeDirectories(dir);
  WriteFileAtomically(dir + "/summary.json", SummaryJson(in, r));
  WriteFileAtomically(dir + "/steps.csv", StepsCsv(r));
  WriteFileAtomically(dir + "/gpus.csv", GpusCsv(in, r));
  WriteFileAtomically(dir + "/experts.csv", ExpertsCsv(r));
  WriteFileAtomically(dir + "/links.csv", LinksCsv(in, r));
}

}  // namespace epsim
