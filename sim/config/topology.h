// epsim config: a GPU cluster described in topologies/*.yaml, loaded into a validated value.
//
// The schema is documented in topologies/README.md. All bandwidths are bytes per second
// per direction, after the optional efficiency factor; all latencies are seconds.
#ifndef EPSIM_SIM_CONFIG_TOPOLOGY_H_
#define EPSIM_SIM_CONFIG_TOPOLOGY_H_

#include <string>

namespace epsim {

// Scale-up fabric: GPUs of one NVLink domain reach each other through NVSwitch, each GPU
// through its own full-duplex port.
struct ScaleUp {
  int domain_gpus = 0;            // GPUs per NVLink domain (8 for DGX, 72 for NVL72)
  double bandwidth_Bps = 0;       // per GPU per direction, efficiency applied
  double line_rate_Bps = 0;       // per GPU per direction, as the datasheet gives it
  double efficiency = 1.0;        // achievable fraction of line rate
  double latency_s = 0;           // GPU to GPU through one NVSwitch
};

// Scale-out fabric: NICs into a leaf tier, leaves into a spine tier (two-tier fat tree);
// with three tiers, leaves and spines in pods, spines into a core tier.
struct ScaleOut {
  int nics_per_node = 0;
  double nic_bandwidth_Bps = 0;   // per NIC per direction, efficiency applied (also switch ports)
  double nic_line_rate_Bps = 0;
  double efficiency = 1.0;
  double nic_latency_s = 0;       // one NIC traversal (counted at each end)
  double switch_latency_s = 0;    // one switch traversal
  int leaf_down_ports = 0;        // NIC-facing ports per leaf switch
  double oversubscription = 1.0;  // leaf down ports : up ports
  bool rail_optimized = true;     // NIC i of every node on the leaves of rail i
  bool rail_only = false;         // no spines: each rail one leaf; cross-rail traffic relayed over NVLink
  int tiers = 2;                  // 2: leaf, spine; 3: leaf, spine, core
  int radix = 0;                  // ports per switch; 0: not checked
  int spine_down_ports = 0;       // three tiers: leaf-facing ports per spine (leaves per pod)
  double spine_oversubscription = 1.0;  // three tiers: spine down ports : up ports
  int planes = 1;                 // multi-plane: NIC i of every node in plane i mod planes, each plane its own two-tier fat tree
};

// How many switches of each tier the first `nodes_used` nodes need, and how they connect
// (the SimGrid fat tree and the fabric layout are both built from it). A pod is the leaves
// that share spines: with two tiers, the whole fabric; with planes, one plane (and no core
// tier joins the pods).
struct FabricShape {
  int nics_per_leaf = 1;     // NIC ports per leaf (padding included)
  int leaves = 0;
  int spines_per_leaf = 0;   // S: each leaf has one link up to each spine of its pod (0: one leaf, or rail-only)
  int leaves_per_pod = 0;
  int pods = 1;
  int cores_per_spine = 0;   // C (three tiers): each spine has one link up to C core switches
  int rail_leaves_per_pod = 0;  // rail-optimized, three tiers: leaves per rail in a pod
  int spines() const { return pods * spines_per_leaf; }
  int cores() const { return spines_per_leaf * cores_per_spine; }
  int slots() const { return leaves * nics_per_leaf; }
};
struct Topology;
FabricShape ShapeFabric(const Topology& topology, int nodes_used);
// Why the switches of `shape` would need more ports than scale_out.radix, naming the tier
// and the numbers; "" when they fit (or no radix is given).
std::string RadixProblem(const Topology& topology, const FabricShape& shape);

struct Topology {
  std::string name;
  std::string source_file;
  std::string gpu;                // profile name, e.g. "h100"
  int nodes = 0;
  int gpus_per_node = 0;
  ScaleUp scale_up;
  ScaleOut scale_out;

  int total_gpus() const { return nodes * gpus_per_node; }
  int NodeOf(int gpu_rank) const { return gpu_rank / gpus_per_node; }
  int DomainOf(int gpu_rank) const { return gpu_rank / scale_up.domain_gpus; }
  // NICs each GPU stripes its fabric traffic over: nics_per_node / gpus_per_node when a node
  // has more NICs than GPUs (AWS p5: 4 per GPU), else 1 (GPUs share NICs evenly).
  int NicsPerGpu() const {
    return scale_out.nics_per_node > gpus_per_node ? scale_out.nics_per_node / gpus_per_node : 1;
  }
  // NIC index inside its node of a GPU's stripe `stripe` (0 <= stripe < NicsPerGpu()).
  int NicOf(int gpu_rank, int stripe = 0) const {
    return (gpu_rank % gpus_per_node) * scale_out.nics_per_node / gpus_per_node + stripe;
  }
  bool SameDomain(int a, int b) const { return DomainOf(a) == DomainOf(b); }
  // Whether the fabric has no route from GPU a's NIC to GPU b's (rail-only: another rail;
  // multi-plane: another plane), so that the traffic relays the flow over NVLink first to
  // the GPU of a's node with b's local index (traffic.h). With several NICs per GPU the
  // planes divide them (checked on load): every stripe stays in its plane.
  bool NoFabricRoute(int a, int b) const {
    if (SameDomain(a, b)) return false;
    if (scale_out.rail_only) return NicOf(a) != NicOf(b);
    return scale_out.planes > 1 && NicOf(a) % scale_out.planes != NicOf(b) % scale_out.planes;
  }
};

// Loads and validates a topology file. `nodes_override` > 0 replaces the file's node count
// (the bundled clusters are parametric in their size). Throws ConfigError.
Topology LoadTopology(const std::string& path, int nodes_override = 0);
// The same from YAML text; `name` stands for the file in errors.
Topology ParseTopology(const std::string& yaml_text, const std::string& name,
                       int nodes_override = 0);

// Checks that `gpus` GPUs fit the topology; throws ConfigError naming `key`.
void CheckGpusFit(const Topology& topology, int gpus, const std::string& file,
                  const std::string& key);

}  // namespace epsim

#endif  // EPSIM_SIM_CONFIG_TOPOLOGY_H_
