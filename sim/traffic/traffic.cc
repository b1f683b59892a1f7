// epsim traffic: all-to-all algorithms as flows (see traffic.h).
#include "sim/traffic/traffic.h"

#include <map>
#include <stdexcept>
#include <tuple>

namespace epsim {

std::vector<TokenFlow> DispatchFlows(const RoutingPlan& plan, const Topology& topology,
                                     A2aAlgorithm algorithm, bool pxn) {
  std::map<std::tuple<int, int, bool>, int64_t> merged;
  auto add = [&](int src, int dst, int64_t tokens, bool via_fabric) {
    if (src != dst && tokens > 0) merged[{src, dst, via_fabric}] += tokens;
  };
  const int p = plan.num_gpus;
  // PXN's relay: the GPU of src's node with dst's local index, whose NIC is on dst's rail
  // (GPUs with one local index use one NIC index).
  auto sender_side_relay = [&](int src, int dst) {
    return topology.NodeOf(src) * topology.gpus_per_node + dst % topology.gpus_per_node;
  };
  // src -> relay over NVLink, relay -> dst over the relay's NIC. Where src's node is the
  // last, partly used one and lacks that GPU, the flow crosses the fabric first on src's
  // rail, to the GPU of dst's node with src's local index, and then NVLink.
  auto add_relayed = [&](int src, int dst, int64_t tokens) {
    int relay = sender_side_relay(src, dst);
    if (relay >= p) relay = topology.NodeOf(dst) * topology.gpus_per_node + src % topology.gpus_per_node;
    add(src, relay, tokens, false);
    add(relay, dst, tokens, false);
  };
  switch (algorithm) {
    case A2aAlgorithm::kDirect:
      for (int g = 0; g < p; ++g) {
        for (const auto& [dst, tokens] : plan.dispatch_tokens[g]) {
          const bool cross_rail = !topology.SameDomain(g, dst) && topology.NicOf(g) != topology.NicOf(dst);
          if (topology.NoFabricRoute(g, dst) || (pxn && cross_rail && sender_side_relay(g, dst) < p))
            add_relayed(g, dst, tokens);
          else
            add(g, dst, tokens, false);
        }
      }
      break;
    case A2aAlgorithm::kRdmaOnly:
      if (topology.scale_out.nics_per_node == 0)
        throw std::invalid_argument("rdma-only needs a scale_out fabric in the topology");
      for (int g = 0; g < p; ++g)
        for (const auto& [dst, pairs] : plan.dispatch_pairs[g]) add(g, dst, pairs, true);
      break;
    case A2aAlgorithm::kLowLatency:  // NVLink inside a domain, the fabric across (FabricLayout)
      for (int g = 0; g < p; ++g) {
        for (const auto& [dst, pairs] : plan.dispatch_pairs[g]) {
          if (topology.NoFabricRoute(g, dst))
            add_relayed(g, dst, pairs);
          else
            add(g, dst, pairs, false);
        }
      }
      break;
    case A2aAlgorithm::kHierarchical: {
      const int domain = topology.scale_up.domain_gpus;
      if (p > domain && p % domain != 0)
        throw std::invalid_argument("hierarchical needs whole NVLink domains (GPUs a multiple of " +
                                    std::to_string(domain) + ")");
      for (int g = 0; g < p; ++g) {
        const int home = g / domain, local = g % domain;
        for (const auto& [dst, tokens] : plan.dispatch_tokens[g]) {
          const int forwarder = (dst / domain) * domain + local;
          add(dst / domain == home ? g : forwarder, dst, tokens, false);
        }
        for (const auto& [node, tokens] : plan.node_tokens[g])
          if (node != home) add(g, node * domain + local, tokens, false);
      }
      break;
    }
  }
  std::vector<TokenFlow> flows;
  flows.reserve(merged.size());
  for (const auto& [key, tokens] : merged)
    flows.push_back({std::get<0>(key), std::get<1>(key), tokens, std::get<2>(key)});
  return flows;
}

int64_t ReturnedCopies(const RoutingPlan& plan, int gpu, A2aAlgorithm algorithm) {
  const auto& rows = algorithm == A2aAlgorithm::kHierarchical ? plan.node_tokens
                     : SendsPerExpert(algorithm)                ? plan.dispatch_pairs
                                                                : plan.dispatch_tokens;
  int64_t total = 0;
  for (const auto& entry : rows[gpu]) total += entry.second;
  return total;
}

int64_t SelfTokens(const RoutingPlan& plan, int gpu, A2aAlgorithm algorithm) {
  const auto& row = SendsPerExpert(algorithm) ? plan.dispatch_pairs[gpu] : plan.dispatch_tokens[gpu];
  for (const auto& [dst, tokens] : row)
    if (dst == gpu) return tokens;
  return 0;
}

}  // namespace epsim
