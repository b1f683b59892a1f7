// epsim engine: step work from a routing plan (see step_builder.h).
#include "sim/engine/step_builder.h"

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/numbers.h"
#include "sim/traffic/traffic.h"

namespace epsim {
namespace {

LayerShape DenseShape(const LayerShape& shape, int64_t dense_ffn) {
  LayerShape dense = shape;
  dense.expert_ffn = dense_ffn;
  dense.shared_experts = 0;
  return dense;
}

LayerShape SlicedShape(const LayerShape& shape, int64_t ways) {
  LayerShape sliced = shape;
  sliced.expert_ffn = (shape.expert_ffn + ways - 1) / ways;
  return sliced;
}

StepWork EmptyWork(int num_gpus) {
  StepWork work;
  work.route_s.assign(num_gpus, 0);
  work.expert_s.assign(num_gpus, 0);
  work.reduce_s.assign(num_gpus, 0);
  return work;
}

}  // namespace

LayerShape ShapeOf(const Scenario& s) {
  LayerShape shape;
  shape.hidden = s.hidden;
  shape.expert_ffn = s.expert_ffn;
  shape.num_experts = s.num_experts;
  shape.shared_experts = s.shared_experts;
  shape.top_k = s.top_k;
  shape.dispatch_token_bytes = Scenario::TokenBytes(s.dispatch_dtype, s.hidden);
  shape.combine_token_bytes = Scenario::TokenBytes(s.combine_dtype, s.hidden);
  shape.expert_dtype = s.expert_dtype == Dtype::kFp8 ? GemmDtype::kFp8 : GemmDtype::kBf16;
  if (s.heads > 0) {
    shape.attention = {static_cast<double>(s.hidden), static_cast<double>(s.heads),
                       static_cast<double>(s.kv_heads > 0 ? s.kv_heads : s.heads),
                       static_cast<double>(s.head_dim > 0 ? s.head_dim : s.hidden / s.heads),
                       static_cast<double>(s.kv_lora_rank), static_cast<double>(s.q_lora_rank),
                       static_cast<double>(s.rope_head_dim),
                       s.attention_dtype == Dtype::kFp8 ? GemmDtype::kFp8 : GemmDtype::kBf16};
    shape.kv_cache = s.mode == Mode::kDecode;
    shape.context = shape.kv_cache ? s.sequence_length : (s.sequence_length + 1) / 2.0;
  }
  return shape;
}

SmBudget SmBudgetOf(const SimulationInputs& in) {
  const CommModel m = CommModelFor(in, Phase::kDispatch);
  if (!m.HasSmBudget()) return {};
  return {m.send_sms * m.sm_rate_Bps, m.recv_sms * m.sm_rate_Bps};
}

StepBuilder::StepBuilder(const SimulationInputs& inputs)
    : inputs_(inputs), layout_(inputs.topology, inputs.scenario.gpus, SmBudgetOf(inputs)),
      costs_(inputs.profile, ShapeOf(inputs.scenario)),
      sliced_costs_(inputs.profile, SlicedShape(ShapeOf(inputs.scenario), DomainGpus(inputs.scenario, inputs.topology))),
      dense_costs_(inputs.profile, DenseShape(ShapeOf(inputs.scenario), inputs.scenario.dense_ffn)),
      dispatch_model_(CommModelFor(inputs, Phase::kDispatch)), combine_model_(CommModelFor(inputs, Phase::kCombine)),
      dispatch_wire_bytes_(WireBytesPerToken(inputs, Phase::kDispatch)),
      combine_wire_bytes_(WireBytesPerToken(inputs, Phase::kCombine)),
      expert_weight_bytes_(ExpertWeightBytes(static_cast<double>(inputs.scenario.hidden),
                                             static_cast<double>(inputs.scenario.expert_ffn),
                                             ShapeOf(inputs.scenario).expert_dtype)) {
  const FabricLayout& layout = layout_;
  for (const Fault& f : inputs.scenario.faults) {
    const std::string what = "'" + f.text + "': ";
    std::vector<int> links;
    if (f.kind == FaultKind::kNic) {
      const int up = layout.NicUpLink(f.node, f.nic);
      links = {up, up + 1};
    } else if (f.kind == FaultKind::kLink) {
      const int link = layout.LinkByName(f.part);
      if (link < 0) {
        throw FieldError(inputs.scenario, "faults",
                         what + "this run has no link '" + f.part + "' (names as in links.csv: " + layout.LinkName(0) +
                             ", " + (layout.has_fabric() ? layout.LinkName(2 * layout.num_gpus()) : "") + ", ...)");
      }
      links = {link};
    } else if (f.kind == FaultKind::kSwitch) {
      links = layout.SwitchLinks(f.part);
      if (links.empty()) {
        const FabricShape& shape = layout.shape();
        throw FieldError(inputs.scenario, "faults",
                         what + "this run has no switch '" + f.part + "' (" +
                             (layout.has_fabric() ? StrFormat("leaf-0 to leaf-%d, spine-0 to spine-%d", shape.leaves - 1,
                                                              shape.spines() - 1) +
                                                        (shape.cores() > 0 ? StrFormat(", core-0 to core-%d", shape.cores() - 1) : "")
                                                  : std::string("it has no fabric")) +
                             ")");
      }
    }
    if (f.Down()) {
      for (const int link : links) {
        const std::string tier = layout.LinkTier(link);
        if (tier == "sm")
          throw FieldError(inputs.scenario, "faults", what + "a GPU's SMs cannot be down; give a fraction in (0, 1]");
        if (tier != "nvlink") continue;
        // An NVLink port down: the GPU's transfers inside its domain go through its NIC
        // instead (ApplyFaults), which needs a fabric route between any two NICs of a node.
        const Topology& t = inputs.topology;
        const char* why = !layout.has_fabric()        ? "this run has no fabric to send through instead"
                          : t.scale_out.rail_only     ? "a rail-only fabric has no route between the rails of one node"
                          : t.scale_out.planes > 1    ? "a multi-plane fabric has no route between the planes of one node"
                                                      : nullptr;
        if (why != nullptr)
          throw FieldError(inputs.scenario, "faults", what + "an NVLink port down sends its GPU's NVLink traffic through "
                                                             "its NIC, but " + why + "; give a fraction in (0, 1]");
      }
    }
    fault_links_.push_back(links);
  }
}

void StepBuilder::ActivateFaults(int step) {
  step_ = step;
  link_rate_.clear();
  link_down_.clear();
  gpu_nic_down_.clear();
  const std::vector<Fault>& faults = inputs_.scenario.faults;
  for (size_t i = 0; i < faults.size(); ++i) {
    if (!faults[i].ActiveAt(step)) continue;
    for (const int link : fault_links_[i]) {  // several faults on one link: the slowest
      link_rate_[link] = std::min(link_rate_.count(link) ? link_rate_[link] : 1.0, faults[i].fraction);
      if (faults[i].Down()) {
        if (link_down_.empty()) link_down_.assign(layout_.num_links(), 0);
        link_down_[link] = 1;
      }
    }
  }
  // A GPU whose one NIC is down sends through peers (traffic.h); GPUs with several NICs
  // stripe over the ones left (FabricLayout::ForEachStripe).
  if (link_down_.empty() || !layout_.has_fabric() || inputs_.topology.NicsPerGpu() > 1) return;
  const Topology& t = inputs_.topology;
  for (int g = 0; g < inputs_.scenario.gpus; ++g) {
    const int up = layout_.NicUpLink(t.NodeOf(g), t.NicOf(g));
    if (!link_down_[up] && !link_down_[up + 1]) continue;
    if (gpu_nic_down_.empty()) gpu_nic_down_.assign(inputs_.scenario.gpus, 0);
    gpu_nic_down_[g] = 1;
  }
}

void StepBuilder::ApplyFaults(StepWork& work) const {
  const std::vector<Fault>& faults = inputs_.scenario.faults;
  for (const Fault& f : faults) {
    if (!f.ActiveAt(step_) || f.kind != FaultKind::kGpu) continue;
    const double stretch = 1 / f.fraction;
    for (std::vector<double>* v : {&work.route_s, &work.expert_s, &work.reduce_s}) (*v)[f.gpu] *= stretch;
    for (auto* batches : {&work.batch_route_s, &work.batch_expert_s, &work.batch_reduce_s})
      for (std::vector<double>& v : *batches) v[f.gpu] *= stretch;
  }
  work.link_rate.assign(link_rate_.begin(), link_rate_.end());
  work.link_down = link_down_;
  if (link_down_.empty()) return;
  // A flow whose NVLink port (the sender's up or the receiver's down) is down goes through
  // the NICs instead, as an RDMA transfer inside the domain.
  for (std::vector<Flow>* flows : {&work.dispatch, &work.combine, &work.moves}) {
    for (Flow& f : *flows) {
      if (f.IsSelf() || !layout_.UsesNvlink(f.src, f.dst, f.via_fabric)) continue;
      if (link_down_[layout_.SendPortLink(f.src, f.dst)] || link_down_[layout_.ReceivePortLink(f.src, f.dst)])
        f.via_fabric = true;
    }
  }
  // Every route must get around what is down (the traffic already avoided NICs that are).
  auto no_route = [&](const std::string& why) {
    return FieldError(inputs_.scenario, "faults", "at step " + std::to_string(step_) + ": " + why);
  };
  for (const std::vector<Flow>* flows : {&work.dispatch, &work.combine, &work.moves}) {
    for (const Flow& f : *flows) {
      const int used = layout_.ForEachStripe(f.src, f.dst, f.via_fabric, &link_down_, [&](int s, int) {
        try {
          layout_.RouteLinks(f.src, f.dst, f.via_fabric, s, &link_down_);
        } catch (const NoRouteError& e) {
          throw no_route(e.what());
        }
      });
      if (used == 0)  // a GPU with several NICs: none pairs up with the other end's
        throw no_route(StrFormat("no route left from GPU %d to GPU %d: no stripe has its NICs at both ends up "
                                 "(NIC i of one GPU pairs with NIC i of the other)", f.src, f.dst));
    }
  }
}

CallCost StepBuilder::CostOf(const CommModel& model, const std::vector<int64_t>& messages) {
  CallCost cost;
  cost.barrier = model.barrier;
  cost.overhead_s.resize(messages.size());
  for (size_t g = 0; g < messages.size(); ++g)
    cost.overhead_s[g] = model.fixed_s + static_cast<double>(messages[g]) * model.per_message_s;
  return cost;
}

StepWork StepBuilder::Build(int step, const RoutingPlan& plan, Pass pass, const std::vector<WeightMove>& beside) {
  const bool tensor = inputs_.scenario.parallelism == Parallelism::kTensor;  // never overlapped
  return Assemble(
      step, plan, pass,
      [&](const RoutingPlan& part, Pass part_pass) {
        return tensor ? TensorParallel(part, part_pass) : ExpertParallel(part, part_pass);
      },
      beside);
}

StepWork StepBuilder::Dense(int step, const RoutingPlan& plan, Pass pass) {
  return Assemble(step, plan, pass, [&](const RoutingPlan& part, Pass part_pass) { return DenseLayer(part, part_pass); });
}

StepWork StepBuilder::Assemble(int step, const RoutingPlan& plan, Pass pass,
                               const std::function<StepWork(const RoutingPlan&, Pass)>& one,
                               const std::vector<WeightMove>& beside) {
  ActivateFaults(step);
  StepWork work;
  if (pass == Pass::kBoth) {
    work = MicroBatches({one(plan, Pass::kForward), one(plan, Pass::kBackward)});
  } else if (inputs_.scenario.overlap == Overlap::kTwoBatch) {
    work = MicroBatches({one(HalfOfPlan(plan, 0), pass), one(HalfOfPlan(plan, 1), pass)});
  } else {
    work = one(plan, pass);
  }
  work.moves = WeightFlows(beside);
  ApplyFaults(work);
  return work;
}

StepWork StepBuilder::DenseLayer(const RoutingPlan& plan, Pass pass) {
  StepWork work = EmptyWork(inputs_.scenario.gpus);
  for (int g = 0; g < inputs_.scenario.gpus; ++g) {
    const std::vector<int64_t> rows = {plan.source_tokens[g]};
    if (inputs_.scenario.dense_ffn > 0)
      work.expert_s[g] = pass == Pass::kBackward ? dense_costs_.ExpertsBackwardS(rows) : dense_costs_.ExpertsS(rows);
    AddAttention(pass, plan.source_tokens[g], work.route_s[g], work.reduce_s[g]);
  }
  return work;
}

StepWork StepBuilder::Rebalance(int step, const std::vector<WeightMove>& moves) {
  ActivateFaults(step);
  StepWork work = EmptyWork(inputs_.scenario.gpus);
  work.dispatch = WeightFlows(moves);
  ApplyFaults(work);
  return work;
}

std::vector<Flow> StepBuilder::WeightFlows(const std::vector<WeightMove>& moves) const {
  std::map<std::pair<int, int>, int64_t> copies;  // per (source, destination), in order
  for (const WeightMove& m : moves) ++copies[{m.src, m.dst}];
  std::vector<TokenFlow> pairs;
  for (const auto& [pair, n] : copies) pairs.push_back({pair.first, pair.second, n});
  std::vector<Flow> flows;
  for (const TokenFlow& f : AroundDownNics(pairs)) flows.push_back({f.src, f.dst, f.tokens * expert_weight_bytes_, f.via_fabric});
  return flows;
}

std::vector<TokenFlow> StepBuilder::AroundDownNics(std::vector<TokenFlow> flows) const {
  if (gpu_nic_down_.empty()) return flows;
  try {
    return RouteAroundDownNics(flows, inputs_.topology, inputs_.scenario.gpus, gpu_nic_down_);
  } catch (const std::invalid_argument& e) {
    throw FieldError(inputs_.scenario, "faults", "at step " + std::to_string(step_) + ": " + e.what());
  }
}

double StepBuilder::ExpertSlotS(CostModel& costs, Pass pass, const std::vector<int64_t>& rows,
                                int64_t shared_tokens) const {
  const int shared = inputs_.scenario.shared_experts;
  const double forward = costs.ExpertsS(rows) + costs.SharedExpertsS(shared, shared_tokens);
  if (pass == Pass::kForward) return forward;
  return costs.ExpertsBackwardS(rows) + costs.SharedExpertsBackwardS(shared, shared_tokens) +
         (inputs_.scenario.recompute ? forward : 0);
}

void StepBuilder::AddAttention(Pass pass, int64_t tokens, double& route_s, double& reduce_s) {
  if (pass == Pass::kBackward)
    reduce_s += costs_.AttentionS(tokens, true);
  else
    route_s += costs_.AttentionS(tokens, false);
}

double StepBuilder::ReduceSlotS(Pass pass, int64_t returned, int64_t tokens) {
  const double reduce = costs_.CombineS(returned, tokens);
  return pass == Pass::kForward ? reduce : reduce + 2 * costs_.RouteS(tokens);
}

StepWork StepBuilder::ExpertParallel(const RoutingPlan& plan, Pass pass) {
  const Scenario& s = inputs_.scenario;
  const int p = s.gpus;
  const bool backward = pass == Pass::kBackward;
  StepWork work = EmptyWork(p);
  for (int g = 0; g < p; ++g) {
    int64_t copies = 0;  // tokens the source gathers into send order
    for (const auto& entry : plan.dispatch_tokens[g]) copies += entry.second;
    work.route_s[g] = backward ? costs_.CombineS(ReturnedCopies(plan, g, s.a2a), plan.source_tokens[g])
                               : costs_.RouteS(plan.source_tokens[g]) + costs_.PermuteS(copies);
  }
  // A message per flow (per GPU pair), or per (token, expert) for the low-latency kernels.
  std::vector<int64_t> dispatch_messages(p, 0), combine_messages(p, 0);
  const std::vector<TokenFlow> flows = AroundDownNics(DispatchFlows(plan, inputs_.topology, s.a2a, s.pxn));
  for (const TokenFlow& f : flows) {
    work.dispatch.push_back({f.src, f.dst, f.tokens * dispatch_wire_bytes_, f.via_fabric});
    work.combine.push_back({f.dst, f.src, f.tokens * combine_wire_bytes_, f.via_fabric});
    const int64_t messages = SendsPerExpert(s.a2a) ? f.tokens : 1;
    dispatch_messages[f.src] += messages;
    combine_messages[f.dst] += messages;
  }
  // With an SM budget, a GPU's own tokens take its SMs' time too.
  if (dispatch_model_.HasSmBudget()) {
    for (int g = 0; g < p; ++g) {
      const int64_t own = SelfTokens(plan, g, s.a2a);
      if (own <= 0) continue;
      work.dispatch.push_back({g, g, own * dispatch_wire_bytes_});
      work.combine.push_back({g, g, own * combine_wire_bytes_});
    }
  }
  // Combine flows grouped by source for a stable order.
  std::stable_sort(work.combine.begin(), work.combine.end(),
                   [](const Flow& a, const Flow& b) { return a.src < b.src; });
  work.dispatch_cost = {CostOf(dispatch_model_, dispatch_messages)};
  work.combine_cost = {CostOf(combine_model_, combine_messages)};
  for (int g = 0; g < p; ++g) {
    std::vector<int64_t> rows;
    for (const auto& [expert, tokens] : plan.gpu_expert_tokens[g]) rows.push_back(tokens);
    // Shared experts run on every GPU over its own tokens.
    work.expert_s[g] = ExpertSlotS(costs_, pass, rows, plan.source_tokens[g]);
    work.reduce_s[g] = ReduceSlotS(pass, ReturnedCopies(plan, g, s.a2a), plan.source_tokens[g]);
    AddAttention(pass, plan.source_tokens[g], work.route_s[g], work.reduce_s[g]);
  }
  return work;
}

StepWork StepBuilder::MicroBatches(std::vector<StepWork> parts) {
  const int p = static_cast<int>(parts[0].route_s.size());
  StepWork work = EmptyWork(p);
  work.micro_batches = static_cast<int>(parts.size());
  for (int m = 0; m < work.micro_batches; ++m) {
    StepWork& part = parts[m];
    for (Flow& f : part.dispatch) work.dispatch.push_back({f.src, f.dst, f.bytes, f.via_fabric, m});
    for (Flow& f : part.combine) work.combine.push_back({f.src, f.dst, f.bytes, f.via_fabric, m});
    for (int g = 0; g < p; ++g) {
      work.route_s[g] += part.route_s[g];
      work.expert_s[g] += part.expert_s[g];
      work.reduce_s[g] += part.reduce_s[g];
    }
    work.batch_route_s.push_back(std::move(part.route_s));
    work.batch_expert_s.push_back(std::move(part.expert_s));
    work.batch_reduce_s.push_back(std::move(part.reduce_s));
    // A part without all-to-alls (a dense layer) costs nothing to call.
    work.dispatch_cost.push_back(part.dispatch_cost.empty() ? CallCost{} : std::move(part.dispatch_cost[0]));
    work.combine_cost.push_back(part.combine_cost.empty() ? CallCost{} : std::move(part.combine_cost[0]));
  }
  return work;
}

StepWork StepBuilder::TensorParallel(const RoutingPlan& plan, Pass pass) {
  const Scenario& s = inputs_.scenario;
  const int p = s.gpus;
  const int domain = DomainGpus(s, inputs_.topology);
  const bool backward = pass == Pass::kBackward;
  const double dispatch_bytes = dispatch_wire_bytes_, combine_bytes = combine_wire_bytes_;
  StepWork work = EmptyWork(p);
  // Each GPU sends to and receives from every other GPU of its domain: one message each.
  const std::vector<int64_t> messages(p, domain - 1);
  work.dispatch_cost = {CostOf(dispatch_model_, messages)};
  work.combine_cost = {CostOf(combine_model_, messages)};
  for (int d0 = 0; d0 < p; d0 += domain) {
    int64_t domain_tokens = 0;
    std::vector<int64_t> rows;  // every GPU of the domain: its slice of every expert
    for (int g = d0; g < d0 + domain; ++g) {
      domain_tokens += plan.source_tokens[g];
      for (const auto& [expert, tokens] : plan.gpu_expert_tokens[g]) rows.push_back(tokens);
    }
    const double expert_s = ExpertSlotS(sliced_costs_, pass, rows, domain_tokens);
    for (int g = d0; g < d0 + domain; ++g) {
      const int64_t partials = static_cast<int64_t>(domain) * plan.source_tokens[g];  // summed in the reduce
      work.route_s[g] = backward ? costs_.CombineS(partials, plan.source_tokens[g]) : costs_.RouteS(plan.source_tokens[g]);
      work.expert_s[g] = expert_s;
      work.reduce_s[g] = ReduceSlotS(pass, partials, plan.source_tokens[g]);
      AddAttention(pass, plan.source_tokens[g], work.route_s[g], work.reduce_s[g]);
      for (int h = d0; h < d0 + domain; ++h) {
        if (h == g) continue;
        work.dispatch.push_back({g, h, plan.source_tokens[g] * dispatch_bytes, false});
        work.combine.push_back({g, h, plan.source_tokens[h] * combine_bytes, false});
      }
    }
  }
  return work;
}

}  // namespace epsim
