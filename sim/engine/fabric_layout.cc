// epsim engine: cluster layout shared by the SimGrid platform and the analytic path.
#include "sim/engine/fabric_layout.h"

#include <algorithm>
#include <cmath>

namespace epsim {

FabricLayout::FabricLayout(const Topology& topology, int num_gpus, SmBudget sm)
    : topology_(topology), num_gpus_(num_gpus), sm_(sm) {
  nodes_used_ = (num_gpus + topology.gpus_per_node - 1) / topology.gpus_per_node;
  // Built whenever the topology has NICs, so that rdma-only traffic has somewhere to go.
  has_fabric_ = topology.scale_out.nics_per_node > 0 && nodes_used_ > 0;
  sm_base_ = 2 * num_gpus_;
  if (!has_fabric_) return;
  const ScaleOut& out = topology.scale_out;
  const int nics = out.nics_per_node;
  if (out.rail_optimized) {
    nics_per_leaf_ = std::min(out.leaf_down_ports, nodes_used_);
    leaves_ = (nodes_used_ + nics_per_leaf_ - 1) / nics_per_leaf_ * nics;
  } else {
    nics_per_leaf_ = std::min(out.leaf_down_ports, nodes_used_ * nics);
    leaves_ = (nodes_used_ * nics + nics_per_leaf_ - 1) / nics_per_leaf_;
  }
  // Enough spines that a leaf's down:up bandwidth equals the oversubscription.
  uplinks_ = leaves_ == 1 ? 0
                          : static_cast<int>(std::max(
                                1.0, std::ceil(nics_per_leaf_ / out.oversubscription - 1e-9)));
  sm_base_ = 2 * num_gpus_ + 2 * slots() + 2 * leaves_ * uplinks_;
}

int FabricLayout::NicSlot(int rank) const { return NicSlot(topology_.NodeOf(rank), topology_.NicOf(rank)); }

int FabricLayout::NicSlot(int node, int nic) const {
  if (topology_.scale_out.rail_optimized) {
    const int per_rail = (nodes_used_ + nics_per_leaf_ - 1) / nics_per_leaf_ * nics_per_leaf_;
    return nic * per_rail + node;
  }
  return node * topology_.scale_out.nics_per_node + nic;
}

std::string FabricLayout::SlotName(int slot) const {
  int node = 0, nic = 0;
  if (topology_.scale_out.rail_optimized) {
    const int per_rail = (nodes_used_ + nics_per_leaf_ - 1) / nics_per_leaf_ * nics_per_leaf_;
    nic = slot / per_rail;
    node = slot % per_rail;
  } else {
    node = slot / topology_.scale_out.nics_per_node;
    nic = slot % topology_.scale_out.nics_per_node;
  }
  if (node >= nodes_used_) return "nic-unused-" + std::to_string(slot);
  return "nic-" + std::to_string(node) + "." + std::to_string(nic);
}

double FabricLayout::RouteLatencyS(int src_rank, int dst_rank, bool via_fabric) const {
  if (src_rank == dst_rank) return 0;  // a copy within the GPU
  if (UsesNvlink(src_rank, dst_rank, via_fabric)) return topology_.scale_up.latency_s;
  const ScaleOut& out = topology_.scale_out;
  const int switches = SameLeaf(src_rank, dst_rank) ? 1 : 3;
  return 2 * out.nic_latency_s + switches * out.switch_latency_s;
}

// Link numbering: [NVLink up/down per GPU][NIC up/down per slot][leaf->spine][spine->leaf].
std::array<int, kMaxRouteLinks> FabricLayout::RouteLinks(int src_rank, int dst_rank, bool via_fabric) const {
  if (src_rank == dst_rank) return {SmSendLink(src_rank), SmRecvLink(src_rank), -1, -1};
  const int send = SendPortLink(src_rank, dst_rank, via_fabric);
  const int receive = ReceivePortLink(src_rank, dst_rank, via_fabric);
  if (UsesNvlink(src_rank, dst_rank, via_fabric)) return {SmSendLink(src_rank), send, receive, SmRecvLink(dst_rank)};
  const int src_slot = NicSlot(src_rank), dst_slot = NicSlot(dst_rank);
  const int src_leaf = src_slot / nics_per_leaf_, dst_leaf = dst_slot / nics_per_leaf_;
  if (src_leaf == dst_leaf) return {send, receive, -1, -1};
  const int up_base = 2 * num_gpus_ + 2 * slots();
  const int down_base = up_base + leaves_ * uplinks_;
  const int spine = dst_slot % uplinks_;
  return {send, up_base + src_leaf * uplinks_ + spine, down_base + dst_leaf * uplinks_ + spine, receive};
}

int FabricLayout::SendPortLink(int src_rank, int dst_rank, bool via_fabric) const {
  if (src_rank == dst_rank) return -1;
  if (UsesNvlink(src_rank, dst_rank, via_fabric)) return 2 * src_rank;
  return 2 * num_gpus_ + 2 * NicSlot(src_rank);
}

int FabricLayout::ReceivePortLink(int src_rank, int dst_rank, bool via_fabric) const {
  if (src_rank == dst_rank) return -1;
  if (UsesNvlink(src_rank, dst_rank, via_fabric)) return 2 * dst_rank + 1;
  return 2 * num_gpus_ + 2 * NicSlot(dst_rank) + 1;
}

const char* FabricLayout::LinkTier(int link) const {
  if (link < 2 * num_gpus_) return "nvlink";
  if (link >= sm_base_) return "sm";
  return link < 2 * num_gpus_ + 2 * slots() ? "nic" : "spine";
}

std::string FabricLayout::LinkName(int link) const {
  if (link < 2 * num_gpus_) return "gpu-" + std::to_string(link / 2) + (link % 2 == 0 ? "-nvl-up" : "-nvl-down");
  if (link >= sm_base_) {
    const int g = (link - sm_base_) / 2;
    return "gpu-" + std::to_string(g) + ((link - sm_base_) % 2 == 0 ? "-sm-send" : "-sm-recv");
  }
  const int nic_base = 2 * num_gpus_, up_base = nic_base + 2 * slots(), down_base = up_base + leaves_ * uplinks_;
  if (link < up_base) return SlotName((link - nic_base) / 2) + ((link - nic_base) % 2 == 0 ? "-up" : "-down");
  if (link < down_base) {
    const int i = link - up_base;
    return "leaf-" + std::to_string(i / uplinks_) + "-spine-" + std::to_string(i % uplinks_);
  }
  const int i = link - down_base;
  return "spine-" + std::to_string(i % uplinks_) + "-leaf-" + std::to_string(i / uplinks_);
}

int FabricLayout::LinkByName(const std::string& name) const {
  for (int l = 0; l < num_links(); ++l)
    if (LinkName(l) == name) return l;
  return -1;
}

int FabricLayout::NicUpLink(int node, int nic) const {
  return has_fabric_ ? 2 * num_gpus_ + 2 * NicSlot(node, nic) : -1;
}

std::vector<double> FabricLayout::LinkCapacities() const {
  std::vector<double> capacity(2 * num_gpus_, topology_.scale_up.bandwidth_Bps);
  if (has_fabric_) {
    capacity.resize(capacity.size() + 2 * slots() + 2 * leaves_ * uplinks_,
                    topology_.scale_out.nic_bandwidth_Bps);
  }
  if (has_sm_links()) {
    for (int g = 0; g < num_gpus_; ++g) {
      capacity.push_back(sm_.send_Bps);
      capacity.push_back(sm_.recv_Bps);
    }
  }
  return capacity;
}

}  // namespace epsim
