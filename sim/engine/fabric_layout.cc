// epsim engine: cluster layout shared by the SimGrid platform and the analytic path.
#include "sim/engine/fabric_layout.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "common/numbers.h"

namespace epsim {

// Link numbering: [NVLink up/down per GPU][NIC up/down per slot][leaf->spine][spine->leaf]
// [spine->core][core->spine][SM send/recv per GPU]; leaf links by (leaf, spine of its pod),
// core links by (global spine, core of its plane).
FabricLayout::FabricLayout(const Topology& topology, int num_gpus, SmBudget sm)
    : topology_(topology), num_gpus_(num_gpus), sm_(sm) {
  nodes_used_ = (num_gpus + topology.gpus_per_node - 1) / topology.gpus_per_node;
  // Built whenever the topology has NICs, so that rdma-only traffic has somewhere to go.
  has_fabric_ = topology.scale_out.nics_per_node > 0 && nodes_used_ > 0;
  nic_base_ = 2 * num_gpus_;
  sm_base_ = nic_base_;
  nics_per_gpu_ = topology.NicsPerGpu();
  if (!has_fabric_) return;
  shape_ = ShapeFabric(topology, nodes_used_);
  const int leaf_links = shape_.leaves * shape_.spines_per_leaf;
  const int core_links = shape_.spines() * shape_.cores_per_spine;
  leaf_up_base_ = nic_base_ + 2 * slots();
  leaf_down_base_ = leaf_up_base_ + leaf_links;
  core_up_base_ = leaf_down_base_ + leaf_links;
  core_down_base_ = core_up_base_ + core_links;
  sm_base_ = core_down_base_ + core_links;
}

int FabricLayout::NicSlot(int rank, int stripe) const {
  return NicSlotOfNode(topology_.NodeOf(rank), topology_.NicOf(rank, stripe));
}

int FabricLayout::NicSlotOfNode(int node, int nic) const {
  if (topology_.scale_out.rail_optimized) {
    // Pod-major, then rail-major: rail r's leaves of a pod hold NIC r of the pod's nodes.
    const int rail_slots = shape_.rail_leaves_per_pod * shape_.nics_per_leaf;  // nodes per pod
    const int pod_slots = shape_.leaves_per_pod * shape_.nics_per_leaf;
    const int planes = topology_.scale_out.planes;
    if (planes > 1)  // plane-major (a plane is a pod), then its rails: NIC i is rail i / planes of plane i % planes
      return nic % planes * pod_slots + nic / planes * rail_slots + node;
    const int pod = node / rail_slots;
    return pod * pod_slots + nic * rail_slots + node % rail_slots;
  }
  return node * topology_.scale_out.nics_per_node + nic;
}

std::string FabricLayout::SlotName(int slot) const {
  int node = 0, nic = 0;
  if (topology_.scale_out.rail_optimized) {
    const int rail_slots = shape_.rail_leaves_per_pod * shape_.nics_per_leaf;
    const int pod_slots = shape_.leaves_per_pod * shape_.nics_per_leaf;
    const int pod = slot / pod_slots, in_pod = slot % pod_slots;
    const int planes = topology_.scale_out.planes;
    if (planes > 1) {
      nic = in_pod / rail_slots * planes + pod;
      node = in_pod % rail_slots;
    } else {
      nic = in_pod / rail_slots;
      node = pod * rail_slots + in_pod % rail_slots;
    }
  } else {
    node = slot / topology_.scale_out.nics_per_node;
    nic = slot % topology_.scale_out.nics_per_node;
  }
  if (node >= nodes_used_) return "nic-unused-" + std::to_string(slot);
  return "nic-" + std::to_string(node) + "." + std::to_string(nic);
}

double FabricLayout::RouteLatencyS(int src_rank, int dst_rank, bool via_fabric, int stripe) const {
  if (src_rank == dst_rank) return 0;  // a copy within the GPU
  if (UsesNvlink(src_rank, dst_rank, via_fabric)) return topology_.scale_up.latency_s;
  const ScaleOut& out = topology_.scale_out;
  const int switches = SameLeaf(src_rank, dst_rank, stripe) ? 1 : SamePod(src_rank, dst_rank, stripe) ? 3 : 5;
  return 2 * out.nic_latency_s + switches * out.switch_latency_s;
}

std::array<int, kMaxRouteLinks> FabricLayout::RouteLinks(int src_rank, int dst_rank, bool via_fabric, int stripe,
                                                         const std::vector<char>* down) const {
  if (src_rank == dst_rank) return {SmSendLink(src_rank), SmRecvLink(src_rank), -1, -1, -1, -1};
  const int send = SendPortLink(src_rank, dst_rank, via_fabric, stripe);
  const int receive = ReceivePortLink(src_rank, dst_rank, via_fabric, stripe);
  if (UsesNvlink(src_rank, dst_rank, via_fabric))
    return {SmSendLink(src_rank), send, receive, SmRecvLink(dst_rank), -1, -1};
  const int src_slot = NicSlot(src_rank, stripe), dst_slot = NicSlot(dst_rank, stripe);
  auto is_down = [&](int link) { return down != nullptr && !down->empty() && (*down)[link] != 0; };
  if (is_down(send) || is_down(receive))  // the traffic sends such flows through a peer's NIC (traffic.h)
    throw NoRouteError("no route from " + SlotName(src_slot) + " to " + SlotName(dst_slot) + ": a NIC port is down");
  const int src_leaf = src_slot / nics_per_leaf(), dst_leaf = dst_slot / nics_per_leaf();
  if (src_leaf == dst_leaf) return {send, receive, -1, -1, -1, -1};
  const int S = uplinks(), C = shape_.cores_per_spine;
  const int src_pod = src_leaf / shape_.leaves_per_pod, dst_pod = dst_leaf / shape_.leaves_per_pod;
  if (S == 0 || (src_pod != dst_pod && C == 0))  // as HasRoute: the traffic relays such flows over NVLink first (traffic.h)
    throw std::logic_error("fabric layout: no route between " + SlotName(src_slot) + " and " + SlotName(dst_slot) +
                           " (rail-only or another plane)");
  // d-mod-k: spine (destination slot mod S), core (slot / S mod C). Around parts that are
  // down, the next spine (and core) in that order whose links are all up.
  for (int i = 0; i < S; ++i) {
    const int s = (dst_slot % S + i) % S;
    const int leaf_up = leaf_up_base_ + src_leaf * S + s;
    const int leaf_down = leaf_down_base_ + dst_leaf * S + s;
    if (is_down(leaf_up) || is_down(leaf_down)) continue;
    if (src_pod == dst_pod) return {send, leaf_up, leaf_down, receive, -1, -1};
    for (int j = 0; j < C; ++j) {
      const int c = (dst_slot / S % C + j) % C;
      const int core_up = core_up_base_ + (src_pod * S + s) * C + c;
      const int core_down = core_down_base_ + (dst_pod * S + s) * C + c;
      if (!is_down(core_up) && !is_down(core_down)) return {send, leaf_up, core_up, core_down, leaf_down, receive};
    }
  }
  throw NoRouteError("no route left from " + SlotName(src_slot) + " to " + SlotName(dst_slot) + ": every " +
                     (src_pod == dst_pod ? "spine between their leaves" : "spine and core between their pods") +
                     " is down or cut off");
}

bool FabricLayout::HasRoute(int src_rank, int dst_rank, int stripe) const {
  if (SameLeaf(src_rank, dst_rank, stripe)) return true;
  if (uplinks() == 0) return false;  // rail-only, or a plane of one leaf
  return SamePod(src_rank, dst_rank, stripe) || shape_.cores_per_spine > 0;  // planes have no core tier
}

int FabricLayout::SendPortLink(int src_rank, int dst_rank, bool via_fabric, int stripe) const {
  if (src_rank == dst_rank) return -1;
  if (UsesNvlink(src_rank, dst_rank, via_fabric)) return 2 * src_rank;
  return nic_base_ + 2 * NicSlot(src_rank, stripe);
}

int FabricLayout::ReceivePortLink(int src_rank, int dst_rank, bool via_fabric, int stripe) const {
  if (src_rank == dst_rank) return -1;
  if (UsesNvlink(src_rank, dst_rank, via_fabric)) return 2 * dst_rank + 1;
  return nic_base_ + 2 * NicSlot(dst_rank, stripe) + 1;
}

const char* FabricLayout::LinkTier(int link) const {
  if (link < nic_base_) return "nvlink";
  if (link >= sm_base_) return "sm";
  if (link < leaf_up_base_) return "nic";
  return link < core_up_base_ ? "spine" : "core";
}

std::string FabricLayout::LinkName(int link) const {
  if (link < nic_base_) return "gpu-" + std::to_string(link / 2) + (link % 2 == 0 ? "-nvl-up" : "-nvl-down");
  if (link >= sm_base_) {
    const int g = (link - sm_base_) / 2;
    return "gpu-" + std::to_string(g) + ((link - sm_base_) % 2 == 0 ? "-sm-send" : "-sm-recv");
  }
  if (link < leaf_up_base_) return SlotName((link - nic_base_) / 2) + ((link - nic_base_) % 2 == 0 ? "-up" : "-down");
  // A leaf's link to the spine s of its pod; spines are numbered pod by pod.
  auto leaf_spine = [&](int i) {
    const int leaf = i / uplinks();
    return std::make_pair(leaf, leaf / shape_.leaves_per_pod * uplinks() + i % uplinks());
  };
  // A spine's link to core c of its plane; core s.C + c serves spine s of every pod.
  auto spine_core = [&](int i) {
    const int spine = i / shape_.cores_per_spine;
    return std::make_pair(spine, spine % uplinks() * shape_.cores_per_spine + i % shape_.cores_per_spine);
  };
  if (link < leaf_down_base_) {
    const auto [leaf, spine] = leaf_spine(link - leaf_up_base_);
    return "leaf-" + std::to_string(leaf) + "-spine-" + std::to_string(spine);
  }
  if (link < core_up_base_) {
    const auto [leaf, spine] = leaf_spine(link - leaf_down_base_);
    return "spine-" + std::to_string(spine) + "-leaf-" + std::to_string(leaf);
  }
  if (link < core_down_base_) {
    const auto [spine, core] = spine_core(link - core_up_base_);
    return "spine-" + std::to_string(spine) + "-core-" + std::to_string(core);
  }
  const auto [spine, core] = spine_core(link - core_down_base_);
  return "core-" + std::to_string(core) + "-spine-" + std::to_string(spine);
}

std::vector<int> FabricLayout::SwitchLinks(const std::string& name) const {
  std::vector<int> links;
  if (!has_fabric_) return links;
  const size_t dash = name.find('-');
  int64_t index = -1;
  if (dash == std::string::npos || !ParseInt64(name.substr(dash + 1), &index) || index < 0) return links;
  const std::string kind = name.substr(0, dash);
  const int S = uplinks(), C = shape_.cores_per_spine;
  if (kind == "leaf" && index < leaves()) {
    const int leaf = static_cast<int>(index);
    for (int slot = leaf * nics_per_leaf(); slot < (leaf + 1) * nics_per_leaf(); ++slot)
      links.insert(links.end(), {nic_base_ + 2 * slot, nic_base_ + 2 * slot + 1});
    for (int s = 0; s < S; ++s) links.insert(links.end(), {leaf_up_base_ + leaf * S + s, leaf_down_base_ + leaf * S + s});
  } else if (kind == "spine" && index < shape_.pods * S) {
    const int pod = static_cast<int>(index) / S, s = static_cast<int>(index) % S;
    for (int leaf = pod * shape_.leaves_per_pod; leaf < (pod + 1) * shape_.leaves_per_pod; ++leaf)
      links.insert(links.end(), {leaf_up_base_ + leaf * S + s, leaf_down_base_ + leaf * S + s});
    for (int c = 0; c < C; ++c)
      links.insert(links.end(), {core_up_base_ + static_cast<int>(index) * C + c, core_down_base_ + static_cast<int>(index) * C + c});
  } else if (kind == "core" && index < S * C) {
    const int s = static_cast<int>(index) / C, c = static_cast<int>(index) % C;  // core s C + c: spine s of every pod
    for (int pod = 0; pod < shape_.pods; ++pod)
      links.insert(links.end(), {core_up_base_ + (pod * S + s) * C + c, core_down_base_ + (pod * S + s) * C + c});
  }
  return links;
}

int FabricLayout::LinkByName(const std::string& name) const {
  for (int l = 0; l < num_links(); ++l)
    if (LinkName(l) == name) return l;
  return -1;
}

int FabricLayout::NicUpLink(int node, int nic) const {
  return has_fabric_ ? nic_base_ + 2 * NicSlotOfNode(node, nic) : -1;
}

std::vector<double> FabricLayout::LinkCapacities() const {
  std::vector<double> capacity(nic_base_, topology_.scale_up.bandwidth_Bps);
  if (has_fabric_) capacity.resize(sm_base_, topology_.scale_out.nic_bandwidth_Bps);
  if (has_sm_links()) {
    for (int g = 0; g < num_gpus_; ++g) {
      capacity.push_back(sm_.send_Bps);
      capacity.push_back(sm_.recv_Bps);
    }
  }
  return capacity;
}

}  // namespace epsim
