// epsim: SimGrid platform builder (see platform.h).
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
// Example routes: gpu-1 -> gpu-5: gpu-1-nvl-up, gpu-5-nvl-down (1 switch).
// gpu-1 -> gpu-9 (node 1, rail 1): nic-0.1 -> leaf 1 -> nic-1.1 (same leaf, 1 switch).
// gpu-1 -> gpu-10 (rail 2): nic-0.1 -> leaf 1 -> spine -> leaf 2 -> nic-1.2 (3 switches).
#include "sim/platform.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace sg4 = simgrid::s4u;

namespace epsim {

std::string Platform::ConfigureNetworkModel(sg4::Engine& engine, int num_gpus) {
  engine.set_config("network/model:CM02");
  engine.set_config("network/crosstraffic:0");
  engine.set_config("network/TCP-gamma:0");
  // lmm compares remaining link capacities (bytes/s, ~1e11) with an absolute epsilon:
  // the default 1e-5 is below one ulp of such numbers at scale and SimGrid aborts.
  double precision = num_gpus >= 1024 ? 1e-3 : (num_gpus >= 256 ? 1e-4 : 1e-5);
  engine.set_config("maxmin/precision:" + std::to_string(precision));
  return "CM02 max-min (no bandwidth/latency factors, crosstraffic 0, TCP-gamma 0, "
         "equal sharing; route latency added per flow)";
}

Platform::Platform(const Topology& topology, int num_gpus)
    : topology_(topology), num_gpus_(num_gpus) {
  nodes_used_ = (num_gpus + topology.gpus_per_node - 1) / topology.gpus_per_node;
  sg4::NetZone* root = sg4::create_full_zone("epsim");
  BuildNvlinkDomains(root);
  if (nodes_used_ * topology_.gpus_per_node > topology_.scale_up.domain_gpus) BuildFabric(root);
  root->seal();
}

void Platform::BuildNvlinkDomains(sg4::NetZone* root) {
  const ScaleUp& up = topology_.scale_up;
  gpu_hosts_.resize(num_gpus_);
  sg4::NetZone* zone = nullptr;
  for (int rank = 0; rank < num_gpus_; ++rank) {
    if (rank % up.domain_gpus == 0) {
      if (zone != nullptr) zone->seal();
      zone = sg4::create_star_zone("nvl-domain-" + std::to_string(rank / up.domain_gpus));
      zone->set_parent(root);
    }
    std::string name = "gpu-" + std::to_string(rank);
    sg4::Host* host = zone->create_host(name, 1e12)->seal();
    const sg4::Link* port_up = zone->create_link(name + "-nvl-up", up.bandwidth_Bps)->seal();
    const sg4::Link* port_down = zone->create_link(name + "-nvl-down", up.bandwidth_Bps)->seal();
    zone->add_route(host->get_netpoint(), nullptr, nullptr, nullptr, {sg4::LinkInRoute(port_up)},
                    false);
    zone->add_route(nullptr, host->get_netpoint(), nullptr, nullptr,
                    {sg4::LinkInRoute(port_down)}, false);
    gpu_hosts_[rank] = host;
  }
  if (zone != nullptr) zone->seal();
}

// Fat-tree leaves are ordered so that each leaf switch holds `nics_per_leaf_` consecutive
// slots. Rail-optimized: slot = rail-major (all nodes' NIC r are neighbours); otherwise
// node-major. Slots beyond the used NICs are padding hosts that never send.
void Platform::BuildFabric(sg4::NetZone* root) {
  const ScaleOut& out = topology_.scale_out;
  const int nics = out.nics_per_node;
  int leaves = 0;
  if (out.rail_optimized) {
    nics_per_leaf_ = std::min(out.leaf_down_ports, nodes_used_);
    int leaves_per_rail = (nodes_used_ + nics_per_leaf_ - 1) / nics_per_leaf_;
    leaves = leaves_per_rail * nics;
  } else {
    nics_per_leaf_ = std::min(out.leaf_down_ports, nodes_used_ * nics);
    leaves = (nodes_used_ * nics + nics_per_leaf_ - 1) / nics_per_leaf_;
  }
  const int slots = leaves * nics_per_leaf_;
  nic_slots_.assign(slots, nullptr);
  auto make_host = [this](sg4::NetZone* zone, const std::vector<unsigned long>& /*coord*/,
                          unsigned long id) {
    sg4::Host* host = zone->create_host(SlotName(static_cast<int>(id)), 1e12)->seal();
    nic_slots_[id] = host;
    return std::make_pair(host->get_netpoint(), static_cast<simgrid::kernel::routing::NetPoint*>(
                                                    nullptr));
  };
  // Up links per leaf: enough spines that down:up bandwidth equals the oversubscription.
  unsigned int uplinks = static_cast<unsigned int>(
      std::max(1.0, std::ceil(nics_per_leaf_ / out.oversubscription - 1e-9)));
  sg4::NetZone* fabric = nullptr;
  if (leaves == 1) {
    sg4::FatTreeParams params(1, {static_cast<unsigned int>(nics_per_leaf_)}, {1}, {1});
    fabric = sg4::create_fatTree_zone("fabric", root, params, sg4::ClusterCallbacks(make_host),
                                      out.nic_bandwidth_Bps, 0.0,
                                      sg4::Link::SharingPolicy::SPLITDUPLEX);
  } else {
    sg4::FatTreeParams params(
        2, {static_cast<unsigned int>(nics_per_leaf_), static_cast<unsigned int>(leaves)},
        {1, uplinks}, {1, 1});
    fabric = sg4::create_fatTree_zone("fabric", root, params, sg4::ClusterCallbacks(make_host),
                                      out.nic_bandwidth_Bps, 0.0,
                                      sg4::Link::SharingPolicy::SPLITDUPLEX);
  }
  fabric->seal();
}

std::string Platform::SlotName(int slot) const {
  const int nics = topology_.scale_out.nics_per_node;
  int node = 0, nic = 0;
  if (topology_.scale_out.rail_optimized) {
    const int per_rail = ((nodes_used_ + nics_per_leaf_ - 1) / nics_per_leaf_) * nics_per_leaf_;
    nic = slot / per_rail;
    node = slot % per_rail;
  } else {
    node = slot / nics;
    nic = slot % nics;
  }
  if (node >= nodes_used_) return "nic-unused-" + std::to_string(slot);
  return "nic-" + std::to_string(node) + "." + std::to_string(nic);
}

int Platform::NicSlot(int rank) const {
  const int node = topology_.NodeOf(rank);
  const int nic = topology_.NicOf(rank);
  if (topology_.scale_out.rail_optimized) {
    const int leaves_per_rail = (nodes_used_ + nics_per_leaf_ - 1) / nics_per_leaf_;
    return nic * leaves_per_rail * nics_per_leaf_ + node;
  }
  return node * topology_.scale_out.nics_per_node + nic;
}

bool Platform::SameLeaf(int src_rank, int dst_rank) const {
  return NicSlot(src_rank) / nics_per_leaf_ == NicSlot(dst_rank) / nics_per_leaf_;
}

double Platform::RouteLatencyS(int src_rank, int dst_rank) const {
  if (topology_.SameDomain(src_rank, dst_rank)) return topology_.scale_up.latency_s;
  const ScaleOut& out = topology_.scale_out;
  const int switches = SameLeaf(src_rank, dst_rank) ? 1 : 3;
  return 2 * out.nic_latency_s + switches * out.switch_latency_s;
}

FlowPath Platform::Path(int src_rank, int dst_rank) const {
  FlowPath path;
  path.latency_s = RouteLatencyS(src_rank, dst_rank);
  if (topology_.SameDomain(src_rank, dst_rank)) {
    path.src = gpu_hosts_[src_rank];
    path.dst = gpu_hosts_[dst_rank];
  } else {
    path.src = nic_slots_[NicSlot(src_rank)];
    path.dst = nic_slots_[NicSlot(dst_rank)];
  }
  return path;
}

}  // namespace epsim
