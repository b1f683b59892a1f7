// epsim engine: SimGrid platform builder (see platform.h).
//
// A rail-optimized two-node DGX, as built here (8 GPUs and 8 NICs per node):
//
//   NVLink plane (one star zone per domain)    fabric plane (fat tree of NIC hosts)
//
//        [NVSwitch domain 0]                         spine 0      spine 1
//       /   |   ...   |    \                        (each leaf has one link to each spine)
//    gpu-0 gpu-1 ... gpu-7  (up+down port each)     leaf 0 ... leaf 7      (leaf r: rail r)
//                                                   |    |      |    |
//        [NVSwitch domain 1]                    nic-0.0 nic-1.0 nic-0.7 nic-1.7
//    gpu-8 gpu-9 ... gpu-15                     (nic-NODE.RAIL, split-duplex links)
//
// Example routes: gpu-1 -> gpu-5: gpu-1-nvl-up, gpu-5-nvl-down (1 switch); with an SM
// budget gpu-1-sm-send, gpu-1-nvl-up, gpu-5-nvl-down, gpu-5-sm-recv, and gpu-1 -> gpu-1
// (its own tokens) gpu-1-sm-send, gpu-1-sm-recv.
// gpu-1 -> gpu-9 (node 1, rail 1): nic-0.1 -> leaf 1 -> nic-1.1 (same leaf, 1 switch).
// gpu-1 -> gpu-10 (rail 2): nic-0.1 -> leaf 1 -> spine -> leaf 2 -> nic-1.2 (3 switches).
#include "sim/engine/platform.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace sg4 = simgrid::s4u;

namespace epsim {

std::string Platform::ConfigureNetworkModel(sg4::Engine& engine, int num_gpus) {
  engine.set_config("network/model:CM02");
  engine.set_config("network/crosstraffic:0");
  engine.set_config("network/TCP-gamma:0");
  // lmm compares remaining link capacities (bytes/s, ~1e11) with an absolute epsilon:
  // the default 1e-5 is below one ulp of such numbers at scale and SimGrid aborts.
  engine.set_config(num_gpus >= 1024 ? "maxmin/precision:1e-3"
                                     : (num_gpus >= 256 ? "maxmin/precision:1e-4"
                                                        : "maxmin/precision:1e-5"));
  return "CM02 max-min (no bandwidth/latency factors, crosstraffic 0, TCP-gamma 0, "
         "equal sharing; route latency added per flow)";
}

void Platform::ConfigurePrecision(sg4::Engine& engine, double precision_s) {
  char precision[32];
  std::snprintf(precision, sizeof(precision), "surf/precision:%.3g", precision_s);
  engine.set_config(precision);
}

Platform::Platform(const Topology& topology, int num_gpus, SmBudget sm) : layout_(topology, num_gpus, sm) {
  sg4::NetZone* root = sg4::create_full_zone("epsim");
  BuildNvlinkDomains(root);
  if (layout_.has_fabric()) BuildFabric(root);
  root->seal();
}

void Platform::BuildNvlinkDomains(sg4::NetZone* root) {
  const ScaleUp& up = topology().scale_up;
  gpu_hosts_.resize(num_gpus());
  sg4::NetZone* zone = nullptr;
  for (int rank = 0; rank < num_gpus(); ++rank) {
    if (rank % up.domain_gpus == 0) {
      if (zone != nullptr) zone->seal();
      zone = sg4::create_star_zone("nvl-domain-" + std::to_string(rank / up.domain_gpus));
      zone->set_parent(root);
    }
    std::string name = "gpu-" + std::to_string(rank);
    sg4::Host* host = zone->create_host(name, 1e12)->seal();
    const sg4::Link* port_up = zone->create_link(name + "-nvl-up", up.bandwidth_Bps)->seal();
    const sg4::Link* port_down = zone->create_link(name + "-nvl-down", up.bandwidth_Bps)->seal();
    std::vector<sg4::LinkInRoute> up_route = {sg4::LinkInRoute(port_up)};
    std::vector<sg4::LinkInRoute> down_route = {sg4::LinkInRoute(port_down)};
    if (layout_.has_sm_links()) {
      // The GPU's all-to-all SMs: NVLink sends leave through the sending SMs, receives
      // arrive through the receiving ones, and the GPU's own tokens go through both.
      const sg4::Link* sm_send = zone->create_link(name + "-sm-send", layout_.sm_budget().send_Bps)->seal();
      const sg4::Link* sm_recv = zone->create_link(name + "-sm-recv", layout_.sm_budget().recv_Bps)->seal();
      up_route.insert(up_route.begin(), sg4::LinkInRoute(sm_send));
      down_route.emplace_back(sm_recv);
      zone->add_route(host->get_netpoint(), host->get_netpoint(), nullptr, nullptr,
                      {sg4::LinkInRoute(sm_send), sg4::LinkInRoute(sm_recv)}, false);
    }
    zone->add_route(host->get_netpoint(), nullptr, nullptr, nullptr, up_route, false);
    zone->add_route(nullptr, host->get_netpoint(), nullptr, nullptr, down_route, false);
    gpu_hosts_[rank] = host;
  }
  if (zone != nullptr) zone->seal();
}

// The fat tree's leaves hold consecutive slots (FabricLayout orders them); slots beyond the
// used NICs are padding hosts that never send. SimGrid requires leaf i to be the i-th
// netpoint created, which the callback's id gives.
void Platform::BuildFabric(sg4::NetZone* root) {
  nic_slots_.assign(layout_.slots(), nullptr);
  auto make_host = [this](sg4::NetZone* zone, const std::vector<unsigned long>& /*coord*/,
                          unsigned long id) {
    sg4::Host* host =
        zone->create_host(layout_.SlotName(static_cast<int>(id)), 1e12)->seal();
    nic_slots_[id] = host;
    return std::make_pair(host->get_netpoint(),
                          static_cast<simgrid::kernel::routing::NetPoint*>(nullptr));
  };
  const auto per_leaf = static_cast<unsigned int>(layout_.nics_per_leaf());
  const double bandwidth = topology().scale_out.nic_bandwidth_Bps;
  sg4::NetZone* fabric = nullptr;
  const FabricShape& shape = layout_.shape();
  if (layout_.leaves() == 1) {
    sg4::FatTreeParams params(1, {per_leaf}, {1}, {1});
    fabric = sg4::create_fatTree_zone("fabric", root, params, sg4::ClusterCallbacks(make_host),
                                      bandwidth, 0.0, sg4::Link::SharingPolicy::SPLITDUPLEX);
  } else if (shape.pods > 1) {
    // Three levels: leaves of `per_leaf` NICs, pods of leaves_per_pod leaves with S spines
    // each, C cores per spine (SimGrid's labels give core (s, c) spine s of every pod).
    // Multi-plane: a pod per plane and one core per spine that no flow uses (the traffic
    // never crosses planes over the fabric, traffic.h); likewise one spine for planes of
    // a single leaf.
    const auto u = [](int v) { return static_cast<unsigned int>(std::max(1, v)); };
    sg4::FatTreeParams params(3, {per_leaf, u(shape.leaves_per_pod), u(shape.pods)},
                              {1, u(shape.spines_per_leaf), u(shape.cores_per_spine)}, {1, 1, 1});
    fabric = sg4::create_fatTree_zone("fabric", root, params, sg4::ClusterCallbacks(make_host),
                                      bandwidth, 0.0, sg4::Link::SharingPolicy::SPLITDUPLEX);
  } else {
    // Rail-only (no spines): one spine that no flow uses, since SimGrid's fat tree needs one;
    // the traffic never crosses rails over the fabric (traffic.h).
    sg4::FatTreeParams params(2, {per_leaf, static_cast<unsigned int>(layout_.leaves())},
                              {1, static_cast<unsigned int>(std::max(1, layout_.uplinks()))}, {1, 1});
    fabric = sg4::create_fatTree_zone("fabric", root, params, sg4::ClusterCallbacks(make_host),
                                      bandwidth, 0.0, sg4::Link::SharingPolicy::SPLITDUPLEX);
  }
  fabric->seal();
}

sg4::Link* Platform::SimGridLink(int link) const {
  const std::string tier = layout_.LinkTier(link), name = layout_.LinkName(link);
  if (tier == "nvlink" || tier == "sm") {
    sg4::Link* l = sg4::Link::by_name_or_null(name);
    if (l == nullptr) throw std::logic_error("platform: no SimGrid link " + name);
    return l;
  }
  // One (GPU, stripe) per NIC slot stands for the slot; find a pair of them on the same
  // stripe whose fabric route crosses `link`.
  const int stripes = topology().NicsPerGpu();
  std::vector<std::vector<int>> by_slot(stripes);  // per stripe: GPUs with a slot not seen yet
  std::vector<bool> seen(layout_.slots(), false);
  for (int s = 0; s < stripes; ++s) {
    for (int g = 0; g < num_gpus(); ++g) {
      if (seen[layout_.NicSlot(g, s)]) continue;
      seen[layout_.NicSlot(g, s)] = true;
      by_slot[s].push_back(g);
    }
  }
  for (int s = 0; s < stripes; ++s) {
    for (const int a : by_slot[s]) {
      for (const int b : by_slot[s]) {
        if (a == b || !layout_.HasRoute(a, b, s)) continue;  // rail-only or across planes: no route
        const std::array<int, kMaxRouteLinks> route = layout_.RouteLinks(a, b, /*via_fabric=*/true, s);
        const auto at = std::find(route.begin(), route.end(), link);
        if (at == route.end()) continue;
        std::vector<sg4::Link*> links;
        double latency = 0;
        const FlowPath path = Path(a, b, /*via_fabric=*/true, s);
        path.src->route_to(path.dst, links, &latency);
        const auto hops = static_cast<size_t>(std::count_if(route.begin(), route.end(), [](int l) { return l >= 0; }));
        if (links.size() != hops) {
          throw std::logic_error("platform: SimGrid's route " + layout_.SlotName(layout_.NicSlot(a, s)) + " -> " +
                                 layout_.SlotName(layout_.NicSlot(b, s)) + " has " + std::to_string(links.size()) +
                                 " links, the layout's " + std::to_string(hops));
        }
        return links[at - route.begin()];
      }
    }
  }
  throw std::logic_error("platform: no route crosses link " + name);
}

void Platform::SetLinkRates(const std::vector<std::pair<int, double>>& rates) {
  if (rates.empty() && slowed_links_.empty()) return;
  const std::vector<double> capacity = layout_.LinkCapacities();
  for (const int link : slowed_links_) SimGridLink(link)->set_bandwidth(capacity[link]);
  slowed_links_.clear();
  for (const auto& [link, fraction] : rates) {
    if (fraction == 0) continue;  // down: a NIC's or leaf's, which the traffic routes around (no flow crosses it)
    SimGridLink(link)->set_bandwidth(capacity[link] * fraction);
    slowed_links_.push_back(link);
  }
}

FlowPath Platform::Path(int src_rank, int dst_rank, bool via_fabric, int stripe) const {
  FlowPath path;
  path.latency_s = layout_.RouteLatencyS(src_rank, dst_rank, via_fabric, stripe);
  if (layout_.UsesNvlink(src_rank, dst_rank, via_fabric)) {
    path.src = gpu_hosts_[src_rank];
    path.dst = gpu_hosts_[dst_rank];
  } else {
    path.src = nic_slots_[layout_.NicSlot(src_rank, stripe)];
    path.dst = nic_slots_[layout_.NicSlot(dst_rank, stripe)];
  }
  return path;
}

}  // namespace epsim
