// epsim engine: the SimGrid platform built from a Topology. All SimGrid platform calls live here.
//
// Two planes share no link, as on the hardware (NVLink and the NICs are separate paths):
//   - the NVLink plane: one star zone per NVLink domain; each GPU host has its own
//     full-duplex port (an up link and a down link at the per-direction bandwidth);
//   - the fabric plane: one host per NIC in a two-tier fat tree (leaf, spine), links split
//     duplex at the NIC rate, optionally rail-optimized and oversubscribed.
// A flow between two GPUs of one domain runs on the NVLink plane, otherwise between the
// two GPUs' NICs on the fabric plane.
//
// Links carry no latency inside SimGrid: CM02 would then share a link in inverse
// proportion to each flow's round-trip time, and InfiniBand and NVSwitch arbitrate per
// flow, not per RTT. With zero latency CM02 is plain max-min fairness with equal weights,
// and the route latency computed here (RouteLatencyS) is added to each flow's arrival.
#ifndef EPSIM_SIM_ENGINE_PLATFORM_H_
#define EPSIM_SIM_ENGINE_PLATFORM_H_

#include <string>
#include <vector>

#include <simgrid/s4u.hpp>

#include "sim/engine/fabric_layout.h"
#include "sim/config/topology.h"

namespace epsim {

// Where one GPU-to-GPU flow runs.
struct FlowPath {
  simgrid::s4u::Host* src = nullptr;
  simgrid::s4u::Host* dst = nullptr;
  double latency_s = 0;
};

class Platform {
 public:
  // Pins the network model (call before Build, once per process): CM02 with no bandwidth
  // or latency factors, no cross traffic, no TCP window cap. Returns its description.
  static std::string ConfigureNetworkModel(simgrid::s4u::Engine& engine, int num_gpus);
  // SimGrid completes together the flows whose ends fall within surf/precision seconds
  // (default 10 us): sets it to `precision_s` (EndPrecisionS).
  static void ConfigurePrecision(simgrid::s4u::Engine& engine, double precision_s);

  // Builds the platform for the first `num_gpus` GPUs of `topology` (ranks in node order),
  // with SM links when `sm` gives a budget (fabric_layout.h).
  Platform(const Topology& topology, int num_gpus, SmBudget sm = {});

  // Stripe `stripe` of the flow (FabricLayout::Stripes).
  FlowPath Path(int src_rank, int dst_rank, bool via_fabric = false, int stripe = 0) const;
  // Sets every link of `rates` ((FabricLayout link, fraction)) to that fraction of its rate and
  // every other link to its full rate (faults take effect and end between steps).
  void SetLinkRates(const std::vector<std::pair<int, double>>& rates);
  simgrid::s4u::Host* GpuHost(int rank) const { return gpu_hosts_[rank]; }
  int num_gpus() const { return layout_.num_gpus(); }
  const Topology& topology() const { return layout_.topology(); }
  const FabricLayout& layout() const { return layout_; }

 private:
  void BuildNvlinkDomains(simgrid::s4u::NetZone* root);
  void BuildFabric(simgrid::s4u::NetZone* root);
  // SimGrid's link for FabricLayout link `link`: NVLink and SM links by name, fabric links
  // as the position they hold on a route SimGrid's fat tree gives (checked against the
  // layout's route, so the two cannot silently differ).
  simgrid::s4u::Link* SimGridLink(int link) const;

  FabricLayout layout_;
  std::vector<simgrid::s4u::Host*> gpu_hosts_;
  std::vector<simgrid::s4u::Host*> nic_slots_;  // by fat-tree leaf position
  std::vector<int> slowed_links_;                // links SetLinkRates left below their rate
};

}  // namespace epsim

#endif  // EPSIM_SIM_ENGINE_PLATFORM_H_
