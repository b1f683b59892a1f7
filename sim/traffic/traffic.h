// epsim traffic: the flows an all-to-all algorithm issues for one step's routing.
//
//   direct        one flow per (source GPU, destination GPU) carrying each token once per
//                 destination GPU (NCCL grouped send/recv; NVLink inside a domain);
//   hierarchical  DeepEP's normal kernels: a token crosses the network once per
//                 destination domain, to the GPU with the source's local index, which
//                 forwards it over NVLink to the GPUs of that domain that hold its experts;
//                 tokens for the source's own domain go over NVLink directly;
//   low-latency   DeepEP's low-latency kernels: one message per (token, expert), no
//                 deduplication, over NVLink inside the domain and RDMA across it;
//   rdma-only     the same messages always through the NICs (the original pure-RDMA
//                 low-latency kernels: no NVLink).
// "Domain" is the NVLink domain (a DGX node; a whole NVL72 rack). Combine moves the same
// flows in reverse (hierarchical: partial sums reduced on the forwarding GPU first).
// With PXN (direct only; NCCL's PCI x NVLink, its default on rail-optimized nodes), a flow
// to a GPU of another domain whose NIC is on another rail goes first over NVLink to the GPU
// of the source's node with the destination's local index (same NIC rail), which sends it
// on over its own NIC: cross-rail traffic stays off the spines, NVLink carries more. On a
// rail-only fabric (no spines) and across the planes of a multi-plane one, direct and
// low-latency flows are always relayed this way (Topology::NoFabricRoute).
#ifndef EPSIM_SIM_TRAFFIC_TRAFFIC_H_
#define EPSIM_SIM_TRAFFIC_TRAFFIC_H_

#include <cstdint>
#include <vector>

#include "sim/config/scenario.h"
#include "sim/config/topology.h"
#include "sim/workload/routing_plan.h"

namespace epsim {

struct TokenFlow {
  int src = 0;
  int dst = 0;
  int64_t tokens = 0;        // tokens, or (token, expert) messages for low-latency and rdma-only
  bool via_fabric = false;
};

// Dispatch flows (src != dst, tokens > 0), merged per (src, dst, via_fabric), in a fixed
// order. The topology must fit the algorithm (ResolveInputs checks it: whole NVLink domains
// for hierarchical, a fabric for rdma-only); std::invalid_argument otherwise.
std::vector<TokenFlow> DispatchFlows(const RoutingPlan& plan, const Topology& topology,
                                     A2aAlgorithm algorithm, bool pxn = false);

// The flows again, each whose source or destination GPU has its NIC down
// (gpu_nic_down[g] != 0; one NIC per GPU) and that leaves its NVLink domain sent through
// peers instead: over NVLink to a GPU of the source's node whose NIC is up, over the
// fabric to a GPU of the destination's node whose NIC is up (on the same rail or plane
// where the fabric needs it), over NVLink to the destination. The source and destination
// serve where their NICs are up; else the peer with the other end's local index (PXN's
// choice), else the next local index up. Merged and ordered as DispatchFlows'. Throws
// std::invalid_argument naming the GPUs when no such peers exist, or for rdma-only flows
// (via_fabric), which use no NVLink.
std::vector<TokenFlow> RouteAroundDownNics(const std::vector<TokenFlow>& flows, const Topology& topology, int gpus,
                                           const std::vector<char>& gpu_nic_down);

// Tokens a source GPU gets back in combine (what its final weighted sum reads).
int64_t ReturnedCopies(const RoutingPlan& plan, int gpu, A2aAlgorithm algorithm);

// Tokens (messages) GPU `gpu` sends to itself: they never cross a link, but its
// communication kernel still moves them.
int64_t SelfTokens(const RoutingPlan& plan, int gpu, A2aAlgorithm algorithm);

}  // namespace epsim

#endif  // EPSIM_SIM_TRAFFIC_TRAFFIC_H_
