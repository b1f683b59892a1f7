// epsim engine: where every GPU, NIC and link of a topology sits, without SimGrid.
//
// The SimGrid platform (platform.cc) and the analytic fast path (analytic_replay.cc) both
// take their layout from here, so the two always describe the same cluster:
//   - NVLink: GPU g has an up port and a down port (links 2g and 2g + 1);
//   - fabric: NIC slots in leaf order (rail-major when rail-optimized), each with an up and
//     a down link; leaves of `nics_per_leaf` slots; `uplinks` spines, each leaf with one
//     link up to and one link down from every spine. As in SimGrid's fat tree (d-mod-k),
//     a flow that leaves its leaf goes through spine (destination slot mod uplinks).
#ifndef EPSIM_SIM_ENGINE_FABRIC_LAYOUT_H_
#define EPSIM_SIM_ENGINE_FABRIC_LAYOUT_H_

#include <array>
#include <string>
#include <vector>

#include "sim/config/topology.h"

namespace epsim {

class FabricLayout {
 public:
  FabricLayout(const Topology& topology, int num_gpus);

  const Topology& topology() const { return topology_; }
  int num_gpus() const { return num_gpus_; }
  int nodes_used() const { return nodes_used_; }
  bool has_fabric() const { return has_fabric_; }
  int nics_per_leaf() const { return nics_per_leaf_; }
  int leaves() const { return leaves_; }
  int uplinks() const { return uplinks_; }
  int slots() const { return leaves_ * nics_per_leaf_; }

  // Leaf-order position of the NIC GPU `rank` uses.
  int NicSlot(int rank) const;
  // "nic-NODE.RAIL" for a used slot, "nic-unused-SLOT" for padding.
  std::string SlotName(int slot) const;
  bool SameLeaf(int src_rank, int dst_rank) const {
    return NicSlot(src_rank) / nics_per_leaf_ == NicSlot(dst_rank) / nics_per_leaf_;
  }
  // Route latency: one NVSwitch inside a domain; else 2 NICs and 1 (same leaf) or 3 switches.
  // `via_fabric` forces the NIC path between GPUs of one NVLink domain.
  double RouteLatencyS(int src_rank, int dst_rank, bool via_fabric = false) const;
  bool UsesNvlink(int src_rank, int dst_rank, bool via_fabric) const {
    return !via_fabric && topology_.SameDomain(src_rank, dst_rank);
  }

  // Links of the route from src to dst (-1 = unused entry), indices into LinkCapacities().
  std::array<int, 4> RouteLinks(int src_rank, int dst_rank, bool via_fabric = false) const;
  // The sender's port on that route (its first link: NVLink up or NIC up) and the
  // receiver's (its last link: NVLink down or NIC down).
  int SendPortLink(int src_rank, int dst_rank, bool via_fabric = false) const;
  int ReceivePortLink(int src_rank, int dst_rank, bool via_fabric = false) const;
  std::vector<double> LinkCapacities() const;

 private:
  Topology topology_;
  int num_gpus_;
  int nodes_used_;
  bool has_fabric_ = false;
  int nics_per_leaf_ = 1;
  int leaves_ = 0;
  int uplinks_ = 0;
};

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_FABRIC_LAYOUT_H_
