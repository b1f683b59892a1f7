// epsim engine: where every GPU, NIC and link of a topology sits, without SimGrid.
//
// The SimGrid platform (platform.cc) and the analytic fast path (analytic_replay.cc) both
// take their layout from here, so the two always describe the same cluster:
//   - NVLink: GPU g has an up port and a down port (links 2g and 2g + 1);
//   - fabric: NIC slots in leaf order (rail-major within each pod when rail-optimized), each
//     with an up and a down link; leaves of `nics_per_leaf` slots; pods of leaves sharing
//     `uplinks` spines, each leaf with one link up to and one link down from every spine of
//     its pod (with planes, a pod is one plane, and nothing joins the pods); with three
//     tiers, each spine with one link up to and down from C core switches (core s x C + c
//     serves spine s of every pod). As in SimGrid's fat tree (d-mod-k), a flow that leaves
//     its leaf goes through spine (destination slot mod S) of its pod, and one that leaves
//     its pod through core (destination slot / S mod C); around links that are down, the
//     next spine and core in that order;
//   - a GPU with k > 1 NICs (Topology::NicsPerGpu) stripes each fabric flow over them:
//     stripe i goes from its NIC i to the peer's NIC i with 1/k of the bytes (with NICs
//     down, over the stripes whose NICs are up at both ends: ForEachStripe);
//   - with an SM budget (sim/traffic/comm_model.h), the SMs a GPU's all-to-all kernels move
//     data with, as a sending and a receiving link per GPU: an NVLink flow g -> h crosses
//     g's sending SMs and h's receiving SMs, and a GPU's own tokens (g -> g) only those.
//     Fabric flows do not: the NICs move them (RDMA).
#ifndef EPSIM_SIM_ENGINE_FABRIC_LAYOUT_H_
#define EPSIM_SIM_ENGINE_FABRIC_LAYOUT_H_

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/parallel.h"
#include "sim/config/topology.h"

namespace epsim {

// The most links one route crosses: SM, NVLink up, NVLink down, SM; or NIC up, leaf to
// spine, spine to core, core to spine, spine to leaf, NIC down.
constexpr int kMaxRouteLinks = 6;

// A flow with no route left around the parts that are down (the message names its ends).
class NoRouteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a GPU's SMs move for its all-to-alls, bytes per second; 0: no budget (no SM links).
struct SmBudget {
  double send_Bps = 0;
  double recv_Bps = 0;
};

class FabricLayout {
 public:
  FabricLayout(const Topology& topology, int num_gpus, SmBudget sm = {});

  const Topology& topology() const { return topology_; }
  int num_gpus() const { return num_gpus_; }
  int nodes_used() const { return nodes_used_; }
  bool has_fabric() const { return has_fabric_; }
  const FabricShape& shape() const { return shape_; }
  int nics_per_leaf() const { return shape_.nics_per_leaf; }
  int leaves() const { return shape_.leaves; }
  int uplinks() const { return shape_.spines_per_leaf; }
  int slots() const { return shape_.slots(); }

  // Leaf-order position of the NIC GPU `rank` uses for stripe `stripe`.
  int NicSlot(int rank, int stripe = 0) const;
  int NicSlotOfNode(int node, int nic) const;
  // Stripes of the flow src -> dst: the GPU's NICs over the fabric, 1 over NVLink or SMs.
  int Stripes(int src_rank, int dst_rank, bool via_fabric = false) const {
    return src_rank == dst_rank || UsesNvlink(src_rank, dst_rank, via_fabric) ? 1 : nics_per_gpu_;
  }
  // Calls visit(stripe, used) for each stripe the flow src -> dst uses, each carrying 1 /
  // `used` of its bytes: all Stripes(), or, with NIC ports down (`down` as in RouteLinks),
  // the stripes whose NIC ports at both ends are up (a GPU with several NICs spreads its
  // flows over the NICs it has left, as NCCL's channels do). Returns `used`: 0 when no
  // stripe has both ends up.
  template <typename Visit>
  int ForEachStripe(int src_rank, int dst_rank, bool via_fabric, const std::vector<char>* down, Visit visit) const {
    const int stripes = Stripes(src_rank, dst_rank, via_fabric);
    int up = stripes;
    if (stripes > 1 && down != nullptr && !down->empty()) {
      up = 0;
      for (int s = 0; s < stripes; ++s) up += StripeUp(src_rank, dst_rank, via_fabric, s, *down);
    }
    for (int s = 0; s < stripes; ++s)
      if (up == stripes || StripeUp(src_rank, dst_rank, via_fabric, s, *down)) visit(s, up);
    return up;
  }
  // "nic-NODE.RAIL" for a used slot, "nic-unused-SLOT" for padding.
  std::string SlotName(int slot) const;
  bool SameLeaf(int src_rank, int dst_rank, int stripe = 0) const {
    return NicSlot(src_rank, stripe) / nics_per_leaf() == NicSlot(dst_rank, stripe) / nics_per_leaf();
  }
  bool SamePod(int src_rank, int dst_rank, int stripe = 0) const {
    return NicSlot(src_rank, stripe) / nics_per_leaf() / shape_.leaves_per_pod ==
           NicSlot(dst_rank, stripe) / nics_per_leaf() / shape_.leaves_per_pod;
  }
  // Whether the fabric joins the NICs of src's and dst's stripe `stripe` (not across the
  // rails of a rail-only fabric or the planes of a multi-plane one).
  bool HasRoute(int src_rank, int dst_rank, int stripe = 0) const;
  // Route latency: one NVSwitch inside a domain; else 2 NICs and 1 (same leaf), 3 (same pod)
  // or 5 switches.
  // `via_fabric` forces the NIC path between GPUs of one NVLink domain.
  double RouteLatencyS(int src_rank, int dst_rank, bool via_fabric = false, int stripe = 0) const;
  bool UsesNvlink(int src_rank, int dst_rank, bool via_fabric) const {
    return !via_fabric && topology_.SameDomain(src_rank, dst_rank);
  }

  // Whether stripe `stripe` of the flow src -> dst has the sender's and the receiver's NIC
  // ports up (`down` per link, nonzero: down).
  bool StripeUp(int src_rank, int dst_rank, bool via_fabric, int stripe, const std::vector<char>& down) const {
    return !down[SendPortLink(src_rank, dst_rank, via_fabric, stripe)] &&
           !down[ReceivePortLink(src_rank, dst_rank, via_fabric, stripe)];
  }
  // Links of the route from src to dst (-1 = unused entry), indices into LinkCapacities().
  // src == dst: the GPU's own tokens, through its SM links (none without an SM budget).
  // `down` (per link, nonzero: the link is down; empty or null: none is) turns the route
  // to the next spine, and core, whose links are up; NoRouteError when none is, or when a
  // NIC port of the route is down (the traffic routes around those, traffic.h).
  std::array<int, kMaxRouteLinks> RouteLinks(int src_rank, int dst_rank, bool via_fabric = false, int stripe = 0,
                                             const std::vector<char>* down = nullptr) const;
  // The sender's port on that route (NVLink up or NIC up) and the receiver's (NVLink down
  // or NIC down); -1 for a GPU's own tokens.
  int SendPortLink(int src_rank, int dst_rank, bool via_fabric = false, int stripe = 0) const;
  int ReceivePortLink(int src_rank, int dst_rank, bool via_fabric = false, int stripe = 0) const;
  // GPU g's sending and receiving SM links; -1 without an SM budget.
  int SmSendLink(int g) const { return has_sm_links() ? sm_base_ + 2 * g : -1; }
  int SmRecvLink(int g) const { return has_sm_links() ? sm_base_ + 2 * g + 1 : -1; }
  bool has_sm_links() const { return sm_.send_Bps > 0; }
  const SmBudget& sm_budget() const { return sm_; }
  std::vector<double> LinkCapacities() const;
  int num_links() const { return has_sm_links() ? sm_base_ + 2 * num_gpus_ : sm_base_; }
  // Link `link`'s tier ("nvlink": a GPU's NVSwitch port; "nic": a NIC's port into its leaf;
  // "spine": a leaf's uplink to or downlink from a spine; "core": a spine's to or from a core
  // switch; "sm": a GPU's all-to-all SMs) and name (gpu-5-nvl-up, nic-0.1-down,
  // leaf-3-spine-2 / spine-2-leaf-3, spine-2-core-7 / core-7-spine-2, gpu-5-sm-send; spines
  // and cores numbered across pods).
  const char* LinkTier(int link) const;
  std::string LinkName(int link) const;
  // Every link of the switch named `name` ("leaf-L": its NIC ports and spine links;
  // "spine-S": its leaf and core links; "core-C": its spine links; numbered as in
  // LinkName), empty for a switch the run does not have.
  std::vector<int> SwitchLinks(const std::string& name) const;
  // The link named `name` (LinkName's names), or -1.
  int LinkByName(const std::string& name) const;
  // Node `node`'s NIC `nic`: its up link (its down link is the next); -1 without a fabric.
  int NicUpLink(int node, int nic) const;

 private:
  Topology topology_;
  int num_gpus_;
  int nodes_used_;
  bool has_fabric_ = false;
  int nics_per_gpu_ = 1;
  FabricShape shape_;
  // First index of each kind of fabric link (FabricLayout.cc's numbering).
  int nic_base_ = 0, leaf_up_base_ = 0, leaf_down_base_ = 0, core_up_base_ = 0, core_down_base_ = 0;
  SmBudget sm_;
  int sm_base_ = 0;  // the first SM link, after every NVLink and fabric link
};

// Where each flow's stripes (those ForEachStripe visits, around `down`) sit in one list of
// every flow's stripes, flow by flow: flow i's are [first[i], first[i + 1]), the last entry
// the total. `flow_at(i)` is flow i of `count`; counted on the worker threads, so that a
// second pass can fill the list in parallel, each flow writing its own entries.
template <typename FlowAt>
std::vector<size_t> StripeOffsets(const FabricLayout& layout, size_t count, FlowAt flow_at,
                                  const std::vector<char>& down) {
  std::vector<size_t> first(count + 1, 0);
  ParallelForRanges(count, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const auto& f = flow_at(i);
      first[i + 1] = static_cast<size_t>(layout.ForEachStripe(f.src, f.dst, f.via_fabric, &down, [](int, int) {}));
    }
  });
  for (size_t i = 0; i < count; ++i) first[i + 1] += first[i];
  return first;
}

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_FABRIC_LAYOUT_H_
