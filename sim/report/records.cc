// epsim report: records and summary (see records.h).
#include "sim/report/records.h"

#include <algorithm>
#include <string>

#include "common/stats.h"
#include "sim/engine/step_builder.h"
#include "sim/report/attribution.h"

namespace epsim {

StepRecorder::StepRecorder(const SimulationInputs& inputs, SimulationResult& result)
    : inputs_(inputs), result_(result), layout_(inputs.topology, inputs.scenario.gpus, SmBudgetOf(inputs)) {}

GpuStepRecord StepRecorder::GpuRecord(int step, int g, const RoutingPlan& plan, const StepWork& work,
                                      const StepTimeline& timeline, const TimeLost& lost, double compute_s) const {
  const Scenario& s = inputs_.scenario;
  const GpuTimeline& t = timeline.gpus[g];
  GpuStepRecord r;
  r.step = step;
  r.gpu = g;
  r.route_s = t.route_end;
  r.dispatch_s = t.dispatch_end - t.route_end;
  r.expert_s = t.expert_end - t.dispatch_end;
  r.combine_s = t.end - t.expert_end;
  r.compute_s = compute_s;
  r.comm_s = t.dispatch_comm_s + t.combine_comm_s;
  r.wait_peers_s = lost.wait_peers_s;
  r.fixed_cost_s = lost.fixed_s;
  r.exposed_comm_s = lost.exposed_comm_s;
  r.contention_s = lost.contention_s;
  r.dispatch_split = lost.dispatch;
  r.combine_split = lost.combine;
  // With micro-batches, communication under compute is not a stall: a GPU stalls only
  // while it waits for peers or pays a call's fixed costs, with nothing to compute.
  r.stall_s = work.micro_batches > 1 ? r.wait_peers_s + r.fixed_cost_s
                                     : std::max(0.0, timeline.step_time_s - r.compute_s - r.comm_s);
  r.end_s = t.end;
  r.expert_tokens = plan.ExpertInputTokens(g);
  if (s.parallelism == Parallelism::kTensor) {  // every GPU of a domain works on all of the domain's tokens
    const int domain = DomainGpus(s, inputs_.topology);
    int64_t total = 0;
    for (int h = g / domain * domain; h < (g / domain + 1) * domain; ++h) total += plan.ExpertInputTokens(h);
    r.expert_tokens = total / domain;
  }
  r.dropped_tokens = plan.source_dropped[g];
  for (const auto& entry : plan.node_tokens[g]) r.node_tokens_sent += entry.second;
  r.dispatch_sent_bytes = t.dispatch_sent_bytes;
  r.dispatch_recv_bytes = t.dispatch_recv_bytes;
  r.combine_sent_bytes = t.combine_sent_bytes;
  r.combine_recv_bytes = t.combine_recv_bytes;
  double dispatch_phase = t.dispatch_end - t.route_end;
  double combine_phase = t.combine_end - t.expert_end;
  if (work.micro_batches > 1) {  // every micro-batch's all-to-all, enter to leave
    dispatch_phase = combine_phase = 0;
    for (const TaskSpan& task : t.tasks) {
      if (!task.communication) continue;
      (std::string(task.name) == "dispatch" ? dispatch_phase : combine_phase) += task.end - task.start;
    }
  }
  r.dispatch_GBps = dispatch_phase > 0 ? t.dispatch_sent_bytes / dispatch_phase / 1e9 : 0;
  r.combine_GBps = combine_phase > 0 ? t.combine_sent_bytes / combine_phase / 1e9 : 0;
  return r;
}

void StepRecorder::Add(int step, int layer, Pass pass, const RoutingPlan& plan, bool routed, const StepWork& work,
                       const StepTimeline& timeline) {
  const int p = inputs_.scenario.gpus;
  std::vector<double> compute(p);
  std::vector<int64_t> unique_received(p, 0);
  for (int g = 0; g < p; ++g) {
    for (const auto& [dst, tokens] : plan.dispatch_tokens[g]) unique_received[dst] += tokens;
    compute[g] = work.route_s[g] + work.expert_s[g] + work.reduce_s[g];
  }
  const std::vector<TimeLost> lost = AttributeTimeLost(layout_, work, timeline, compute);
  int critical_gpu = 0;
  std::vector<double> gpu_tokens, dispatch_rates, combine_rates;
  for (int g = 0; g < p; ++g) {
    GpuStepRecord r = GpuRecord(step, g, plan, work, timeline, lost[g], compute[g]);
    r.layer = layer;
    r.pass = pass;
    r.unique_tokens_received = unique_received[g];
    if (!routed)  // a dense layer or a rebalance: no token routed
      r.expert_tokens = r.dropped_tokens = r.unique_tokens_received = r.node_tokens_sent = 0;
    gpu_tokens.push_back(static_cast<double>(r.expert_tokens));
    dispatch_rates.push_back(r.dispatch_GBps);
    combine_rates.push_back(r.combine_GBps);
    if (timeline.gpus[g].end >= timeline.gpus[critical_gpu].end) critical_gpu = g;
    result_.gpus.push_back(r);
  }
  const GpuStepRecord& critical = result_.gpus[result_.gpus.size() - p + critical_gpu];
  const PassTimes times{timeline.step_time_s, critical.route_s, critical.dispatch_s, critical.expert_s,
                        critical.combine_s};
  for (LinkStepRecord link : LinkLoads(layout_, step, work, timeline)) {
    link.layer = layer;
    link.pass = pass;
    result_.links.push_back(link);
  }
  // A step's first unit opens its record; its other units (more layers, the backward) add
  // to it, in the order they ran.
  if (result_.steps.empty() || result_.steps.back().step != step) {
    result_.steps.emplace_back();
    result_.steps.back().step = step;
    step_stalls_.assign(p, 0.0);
    step_forward_units_ = 0;
    for (const int tokens : plan.source_tokens) result_.steps.back().tokens += tokens;
  }
  StepRecord& rec = result_.steps.back();
  rec.step_time_s += timeline.step_time_s;
  for (int g = 0; g < p; ++g) step_stalls_[g] += result_.gpus[result_.gpus.size() - p + g].stall_s;
  rec.stall_min_s = *std::min_element(step_stalls_.begin(), step_stalls_.end());
  rec.stall_median_s = PercentileNearestRank(step_stalls_, 50);
  rec.stall_max_s = *std::max_element(step_stalls_.begin(), step_stalls_.end());
  auto add_phases = [](PassTimes& total, const PassTimes& unit) {
    total.time_s += unit.time_s;
    total.route_s += unit.route_s;
    total.dispatch_s += unit.dispatch_s;
    total.expert_s += unit.expert_s;
    total.combine_s += unit.combine_s;
  };
  if (pass == Pass::kRebalance) {
    rec.rebalance_s += timeline.step_time_s;
    for (const Flow& f : work.dispatch) rec.rebalance_bytes += f.bytes;
    return;
  }
  if (!work.moves.empty()) {  // an overlapped rebalance's moves beside this layer: from the first start to the last arrival
    rec.rebalance_s += *std::max_element(timeline.moves_flow_end.begin(), timeline.moves_flow_end.end()) -
                       *std::min_element(timeline.moves_flow_start.begin(), timeline.moves_flow_start.end());
    for (const Flow& f : work.moves) rec.rebalance_bytes += f.bytes;
  }
  if (pass == Pass::kBackward) {
    add_phases(rec.backward, times);
    rec.backward_critical_gpu = critical_gpu;
    return;
  }
  // The forward (or both passes in one replay): its phases, its calls, its routing.
  PassTimes forward = times;
  if (pass == Pass::kBoth) {  // one replay: when each pass's last task ended
    forward.time_s = 0;
    double backward_end = 0;
    for (const GpuTimeline& gpu : timeline.gpus) {
      for (const TaskSpan& task : gpu.tasks) {
        double& end = MicroBatchPass(pass, task.micro_batch) == Pass::kForward ? forward.time_s : backward_end;
        end = std::max(end, task.end);
      }
    }
    rec.backward.time_s += backward_end;
  }
  rec.forward_s += forward.time_s;
  rec.route_s += forward.route_s;
  rec.dispatch_s += forward.dispatch_s;
  rec.expert_s += forward.expert_s;
  rec.combine_s += forward.combine_s;
  rec.critical_gpu = critical_gpu;
  for (auto [total, unit] : {std::make_pair(&rec.dispatch_split, &critical.dispatch_split),
                             std::make_pair(&rec.combine_split, &critical.combine_split)}) {
    total->fixed_s += unit->fixed_s;
    total->link_s += unit->link_s;
    total->wait_s += unit->wait_s;
  }
  if (!routed) return;  // a dense layer: no routing to add
  std::vector<double> expert_loads;  // routed load: kept + dropped
  for (int e = 0; e < inputs_.scenario.num_experts; ++e)
    expert_loads.push_back(static_cast<double>(plan.expert_kept[e] + plan.expert_dropped[e]));
  // Over the layers: means of the skews and rates, sums of the assignments and drops.
  const double n = step_forward_units_++;
  auto mean_in = [n](double& mean, double value) { mean = (mean * n + value) / (n + 1); };
  mean_in(rec.token_skew, MaxOverMean(gpu_tokens));
  mean_in(rec.expert_skew, MaxOverMean(expert_loads));
  mean_in(rec.dispatch_GBps, Mean(dispatch_rates));
  mean_in(rec.combine_GBps, Mean(combine_rates));
  rec.assignments += plan.assignments;
  rec.dropped += plan.dropped;
  for (int e = 0; e < inputs_.scenario.num_experts; ++e)
    result_.experts.push_back({step, e, plan.expert_kept[e], plan.expert_dropped[e], layer});
}

std::vector<BusiestLink> StepRecorder::BusiestLinks() const {
  const double steps = std::max<size_t>(result_.steps.size(), 1);
  double step_time = 0;
  for (const StepRecord& r : result_.steps) step_time += r.step_time_s / steps;
  // Per link, its sums over the steps; then per tier the largest load (lowest index on ties).
  std::vector<BusiestLink> per_link(layout_.num_links());
  for (const LinkStepRecord& r : result_.links) {
    BusiestLink& b = per_link[r.link];
    b.load_s += r.load_s / steps;
    b.busy_s += r.busy_s / steps;
    b.peak_flows = std::max(b.peak_flows, r.peak_flows);
  }
  std::vector<BusiestLink> out;
  for (int l = 0; l < layout_.num_links(); ++l) {
    if (per_link[l].load_s <= 0) continue;
    const std::string tier = layout_.LinkTier(l);
    auto it = std::find_if(out.begin(), out.end(), [&](const BusiestLink& b) { return b.tier == tier; });
    if (it != out.end() && it->load_s >= per_link[l].load_s) continue;
    BusiestLink b = per_link[l];
    b.tier = tier;
    b.name = layout_.LinkName(l);
    b.utilization = step_time > 0 ? b.load_s / step_time : 0;
    if (it == out.end()) out.push_back(b); else *it = b;
  }
  return out;
}

std::string RebalancedSteps(const Summary& summary) {
  std::string steps;
  for (const int step : summary.rebalanced_steps) steps += (steps.empty() ? "" : ", ") + std::to_string(step);
  return steps;
}

Summary Summarize(const SimulationResult& result, int num_gpus) {
  Summary sum;
  std::vector<double> times, route, dispatch, expert, combine, token_skew, expert_skew, drate, crate;
  const double steps = static_cast<double>(result.steps.size());
  for (const StepRecord& r : result.steps) {
    sum.forward_s += r.forward_s / steps;
    for (auto [total, part] : {std::make_pair(&sum.backward.time_s, r.backward.time_s),
                               std::make_pair(&sum.backward.route_s, r.backward.route_s),
                               std::make_pair(&sum.backward.dispatch_s, r.backward.dispatch_s),
                               std::make_pair(&sum.backward.expert_s, r.backward.expert_s),
                               std::make_pair(&sum.backward.combine_s, r.backward.combine_s)})
      *total += part / steps;
    times.push_back(r.step_time_s);
    route.push_back(r.route_s);
    dispatch.push_back(r.dispatch_s);
    expert.push_back(r.expert_s);
    combine.push_back(r.combine_s);
    token_skew.push_back(r.token_skew);
    expert_skew.push_back(r.expert_skew);
    drate.push_back(r.dispatch_GBps);
    crate.push_back(r.combine_GBps);
    sum.dropped_tokens += r.dropped;
    sum.assignments += r.assignments;
  }
  sum.step_time_s = Mean(times);
  sum.step_time_p50_s = PercentileNearestRank(times, 50);
  sum.step_time_p99_s = PercentileNearestRank(times, 99);
  sum.route_s = Mean(route);
  sum.dispatch_s = Mean(dispatch);
  sum.expert_s = Mean(expert);
  sum.combine_s = Mean(combine);
  sum.token_skew = Mean(token_skew);
  sum.expert_skew = Mean(expert_skew);
  sum.dispatch_GBps = Mean(drate);
  sum.combine_GBps = Mean(crate);
  for (const StepRecord& r : result.steps) {
    for (auto [total, split] : {std::make_pair(&sum.dispatch_split, &r.dispatch_split),
                                std::make_pair(&sum.combine_split, &r.combine_split)}) {
      total->fixed_s += split->fixed_s / result.steps.size();
      total->link_s += split->link_s / result.steps.size();
      total->wait_s += split->wait_s / result.steps.size();
    }
  }
  // Per GPU and step: in training both passes of each step add up.
  const double gpu_steps = steps * num_gpus;
  for (const GpuStepRecord& r : result.gpus) {
    sum.training = sum.training || r.pass == Pass::kBackward || r.pass == Pass::kBoth;
    sum.fixed_cost_s += r.fixed_cost_s / gpu_steps;
    sum.wait_peers_s += r.wait_peers_s / gpu_steps;
    sum.exposed_comm_s += r.exposed_comm_s / gpu_steps;
    sum.contention_s += r.contention_s / gpu_steps;
  }
  sum.dropped_fraction =
      sum.assignments > 0 ? static_cast<double>(sum.dropped_tokens) / sum.assignments : 0;
  double tokens = 0, time = 0;
  for (const StepRecord& r : result.steps) {
    tokens += static_cast<double>(r.tokens);
    time += r.step_time_s;
    if (r.rebalance_s <= 0) continue;
    ++sum.rebalances;
    sum.rebalance_bytes += r.rebalance_bytes;
    sum.rebalance_s += r.rebalance_s;
    sum.rebalanced_steps.push_back(r.step);
  }
  sum.tokens_per_s_per_gpu = time > 0 ? tokens / num_gpus / time : 0;
  std::vector<double> gpu_stall(num_gpus, 0.0);
  for (const GpuStepRecord& r : result.gpus) gpu_stall[r.gpu] += r.stall_s / steps;
  sum.most_stalled_gpu = static_cast<int>(std::max_element(gpu_stall.begin(), gpu_stall.end()) - gpu_stall.begin());
  std::vector<double> layer_stall;
  for (const GpuStepRecord& r : result.gpus) {
    if (r.gpu != sum.most_stalled_gpu || r.layer < 0) continue;  // a rebalance: no layer's
    if (r.layer >= static_cast<int>(layer_stall.size())) layer_stall.resize(r.layer + 1, 0.0);
    layer_stall[r.layer] += r.stall_s / steps;
  }
  sum.its_worst_layer = static_cast<int>(std::max_element(layer_stall.begin(), layer_stall.end()) - layer_stall.begin());
  sum.its_worst_layer_stall_s = layer_stall[sum.its_worst_layer];
  sum.stall_min_s = *std::min_element(gpu_stall.begin(), gpu_stall.end());
  sum.stall_median_s = PercentileNearestRank(gpu_stall, 50);
  sum.stall_max_s = *std::max_element(gpu_stall.begin(), gpu_stall.end());
  return sum;
}

}  // namespace epsim
