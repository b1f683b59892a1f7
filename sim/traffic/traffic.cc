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
  switch (algorithm) {
    case A2aAlgorithm::kDirect:
      for (int g = 0; g < p; ++g) {
        for (const auto& [dst, tokens] : plan.dispatch_tokens[g]) {
          // PXN: the GPU of g's node with dst's local index has a NIC on dst's rail (GPUs with
          // one local index use one NIC index).
          const int relay = topology.NodeOf(g) * topology.gpus_per_node + dst % topology.gpus_per_node;
          const bool forward = (pxn || topology.scale_out.rail_only) && !topology.SameDomain(g, dst) &&
                               topology.NicOf(g) != topology.NicOf(dst) && relay < p;
          if (!forward) {
            add(g, dst, tokens, false);
            continue;
          }
          add(g, relay, tokens, false);  // NVLink inside the node
          add(relay, dst, tokens, false);  // the relay's NIC, on dst's rail
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
          // A rail-only fabric has no route between rails: relayed as PXN does.
          const int relay = topology.NodeOf(g) * topology.gpus_per_node + dst % topology.gpus_per_node;
          if (topology.scale_out.rail_only && !topology.SameDomain(g, dst) && topology.NicOf(g) != topology.NicOf(dst) &&
              relay < p) {
            add(g, relay, pairs, false);
            add(relay, dst, pairs, false);
          } else {
            add(g, dst, pairs, false);
          }
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
