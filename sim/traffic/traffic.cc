// epsim traffic: all-to-all algorithms as flows (see traffic.h).
#include "sim/traffic/traffic.h"

#include <algorithm>
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
          const bool pxn_relays = pxn && !topology.SameDomain(g, dst) && topology.NicOf(g) != topology.NicOf(dst) &&
                                  sender_side_relay(g, dst) < p;  // a cross-rail flow, and the relay is in the run
          if (pxn_relays || topology.NoFabricRoute(g, dst))
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

std::vector<TokenFlow> RouteAroundDownNics(const std::vector<TokenFlow>& flows, const Topology& topology, int gpus,
                                           const std::vector<char>& gpu_nic_down) {
  const int per_node = topology.gpus_per_node;
  auto nic_up = [&](int g) { return g < gpus && gpu_nic_down[g] == 0; };
  // Who may send x's traffic over the fabric, best first: x, the GPU of x's node with the
  // other end's local index, then the next local indices; only GPUs of the run whose NIC is up.
  auto candidates = [&](int x, int other) {
    std::vector<int> out;
    const int node = topology.NodeOf(x) * per_node;
    for (const int g : {x, node + other % per_node})
      if (nic_up(g) && std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
    for (int i = 1; i < per_node; ++i) {
      const int g = node + (x % per_node + i) % per_node;
      if (nic_up(g) && std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
    }
    return out;
  };
  std::map<std::tuple<int, int, bool>, int64_t> merged;
  auto add = [&](int src, int dst, int64_t tokens, bool via_fabric) {
    if (src != dst && tokens > 0) merged[{src, dst, via_fabric}] += tokens;
  };
  for (const TokenFlow& f : flows) {
    const bool crosses = f.via_fabric || !topology.SameDomain(f.src, f.dst);
    if (!crosses || (nic_up(f.src) && nic_up(f.dst))) {
      add(f.src, f.dst, f.tokens, f.via_fabric);
      continue;
    }
    const int down = nic_up(f.src) ? f.dst : f.src;
    if (f.via_fabric)
      throw std::invalid_argument("GPU " + std::to_string(down) + "'s NIC is down, and rdma-only sends every message "
                                  "over the GPU's own NIC (no NVLink to a peer)");
    const std::vector<int> senders = candidates(f.src, f.dst), receivers = candidates(f.dst, f.src);
    // One relay, on the side whose NIC is down, first; relays on both sides only if needed.
    int a = -1, b = -1;
    for (int pass = 0; pass < 2 && a < 0; ++pass) {
      for (const int x : senders) {
        for (const int y : receivers) {
          if ((pass == 0) == (x != f.src && y != f.dst)) continue;
          if (topology.NoFabricRoute(x, y)) continue;
          a = x;
          b = y;
          break;
        }
        if (a >= 0) break;
      }
    }
    if (a < 0) {
      const std::string route = "no route left from GPU " + std::to_string(f.src) + " to GPU " + std::to_string(f.dst);
      const auto node = [&](int g) { return "node " + std::to_string(topology.NodeOf(g)); };
      if (senders.empty() || receivers.empty())
        throw std::invalid_argument(route + ": no GPU of " + node(senders.empty() ? f.src : f.dst) + " has its NIC up");
      throw std::invalid_argument(route + ": no GPU of " + node(f.src) + " with its NIC up reaches one of " + node(f.dst) +
                                  " over the fabric (another rail or plane)");
    }
    add(f.src, a, f.tokens, false);
    add(a, b, f.tokens, false);
    add(b, f.dst, f.tokens, false);
  }
  std::vector<TokenFlow> out;
  out.reserve(merged.size());
  for (const auto& [key, tokens] : merged) out.push_back({std::get<0>(key), std::get<1>(key), tokens, std::get<2>(key)});
  return out;
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
