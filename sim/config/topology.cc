// epsim config: topology loading and validation (see topology.h and topologies/README.md).
#include "sim/config/topology.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/yaml.h"

namespace epsim {
namespace {

Topology FromYaml(const YAML::Node& root, const std::string& file, int nodes_override) {
  YamlMap top(root, file, "");
  Topology t;
  t.source_file = file;
  t.name = top.String("name");
  t.gpu = top.String("gpu");
  t.nodes = static_cast<int>(top.Int("nodes", 1));
  t.gpus_per_node = static_cast<int>(top.Int("gpus_per_node", 1));
  top.Ignore("sources");
  if (t.gpus_per_node > 1024) top.Fail("gpus_per_node", "more than 1024 GPUs in one node");
  if (t.nodes > 1'000'000) top.Fail("nodes", "more than 1,000,000 nodes");
  if (nodes_override > 0) t.nodes = nodes_override;

  YamlMap up = top.Child("scale_up");
  t.scale_up.domain_gpus = static_cast<int>(up.Int("domain_gpus", 1));
  t.scale_up.line_rate_Bps = up.BandwidthBps("bandwidth");
  t.scale_up.efficiency = up.PositiveOr("efficiency", 1.0);
  if (t.scale_up.efficiency > 1.0) up.Fail("efficiency", "must be in (0, 1]");
  t.scale_up.bandwidth_Bps = t.scale_up.line_rate_Bps * t.scale_up.efficiency;
  t.scale_up.latency_s = up.DurationS("latency");
  up.Finish();
  if (t.scale_up.domain_gpus % t.gpus_per_node != 0) {
    throw ConfigError(file, "scale_up.domain_gpus", std::to_string(t.scale_up.domain_gpus),
                      "an NVLink domain must hold whole nodes (a multiple of gpus_per_node = " +
                          std::to_string(t.gpus_per_node) + ")");
  }

  // A cluster that is one NVLink domain may omit the scale-out fabric.
  const bool needs_fabric = t.total_gpus() > t.scale_up.domain_gpus;
  if (top.Has("scale_out")) {
    YamlMap out = top.Child("scale_out");
    ScaleOut& so = t.scale_out;
    so.nics_per_node = static_cast<int>(out.Int("nics_per_node", 1));
    so.nic_line_rate_Bps = out.BandwidthBps("nic_bandwidth");
    so.efficiency = out.PositiveOr("efficiency", 1.0);
    if (so.efficiency > 1.0) out.Fail("efficiency", "must be in (0, 1]");
    so.nic_bandwidth_Bps = so.nic_line_rate_Bps * so.efficiency;
    so.nic_latency_s = out.DurationS("nic_latency");
    so.switch_latency_s = out.DurationS("switch_latency");
    so.leaf_down_ports = static_cast<int>(out.Int("leaf_down_ports", 1));
    so.oversubscription = out.PositiveOr("oversubscription", 1.0);
    so.rail_optimized = out.Bool("rail_optimized");
    if (out.Has("rail_only")) so.rail_only = out.Bool("rail_only");
    if (so.rail_only && !so.rail_optimized) out.Fail("rail_only", "a rail-only fabric is rail-optimized (rail_optimized: true)");
    if (out.Has("radix")) so.radix = static_cast<int>(out.Int("radix", 2));
    if (out.Has("tiers")) so.tiers = static_cast<int>(out.Int("tiers", 2));
    if (so.tiers != 2 && so.tiers != 3) out.Fail("tiers", "2 (leaf, spine) or 3 (leaf, spine, core)");
    if (so.rail_only && out.Has("tiers")) out.Fail("tiers", "a rail-only fabric has no spine or core tier");
    if (so.tiers == 3) {
      so.spine_down_ports = static_cast<int>(out.Int("spine_down_ports", 1));
      so.spine_oversubscription = out.PositiveOr("spine_oversubscription", 1.0);
      if (so.spine_oversubscription < 1.0 || so.spine_oversubscription > so.spine_down_ports)
        out.Fail("spine_oversubscription", "must be between 1 and spine_down_ports");
      if (so.rail_optimized && so.spine_down_ports < so.nics_per_node) {
        out.Fail("spine_down_ports", "a rail-optimized pod holds a leaf of every rail: at least nics_per_node (" +
                                         std::to_string(so.nics_per_node) + ")");
      }
    } else {
      for (const char* key : {"spine_down_ports", "spine_oversubscription"})
        if (out.Has(key)) out.Fail(key, "applies to three tiers (scale_out.tiers: 3)");
    }
    if (out.Has("planes")) {
      so.planes = static_cast<int>(out.Int("planes", 1));
      if (so.planes > 1 && so.rail_only) out.Fail("planes", "a rail-only fabric has no planes (one leaf per rail)");
      if (so.planes > 1 && !so.rail_optimized) out.Fail("planes", "a multi-plane fabric is rail-optimized (rail_optimized: true)");
      if (so.planes > 1 && so.tiers != 2) out.Fail("planes", "each plane is a two-tier fat tree (scale_out.tiers: 2)");
      if (so.nics_per_node % so.planes != 0)
        out.Fail("planes", "must divide nics_per_node (" + std::to_string(so.nics_per_node) + ")");
      const int nics_per_gpu = so.nics_per_node > t.gpus_per_node ? so.nics_per_node / t.gpus_per_node : 1;
      if (nics_per_gpu > 1 && nics_per_gpu % so.planes != 0) {
        out.Fail("planes", "with " + std::to_string(nics_per_gpu) +
                               " NICs per GPU, must divide them (each GPU a NIC in every plane)");
      }
    }
    out.Finish();
    const bool shared = so.nics_per_node <= t.gpus_per_node;
    if (shared ? t.gpus_per_node % so.nics_per_node != 0 : so.nics_per_node % t.gpus_per_node != 0) {
      throw ConfigError(file, "scale_out.nics_per_node", std::to_string(so.nics_per_node),
                        "NICs must divide the GPUs of a node, or the GPUs the NICs (gpus_per_node = " +
                            std::to_string(t.gpus_per_node) + ")");
    }
    if (so.oversubscription < 1.0 || so.oversubscription > so.leaf_down_ports) {
      out.Fail("oversubscription", "must be between 1 and leaf_down_ports");
    }
  } else if (needs_fabric) {
    throw ConfigError(file, "scale_out", "",
                      "missing required key (the cluster has more GPUs than one NVLink domain)");
  }
  top.Finish();
  return t;
}

}  // namespace

Topology LoadTopology(const std::string& path, int nodes_override) {
  return FromYaml(LoadYamlFile(path), path, nodes_override);
}

Topology ParseTopology(const std::string& yaml_text, const std::string& name, int nodes_override) {
  return FromYaml(LoadYamlString(yaml_text, name), name, nodes_override);
}

FabricShape ShapeFabric(const Topology& t, int nodes_used) {
  const ScaleOut& out = t.scale_out;
  FabricShape f;
  const int nics = out.nics_per_node;
  if (nics <= 0 || nodes_used <= 0) return f;
  auto up_links = [](int down, double oversubscription) {
    return std::max(1, static_cast<int>(std::ceil(down / oversubscription - 1e-9)));
  };
  auto divide_up = [](int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); };
  if (out.rail_optimized) {
    f.nics_per_leaf = std::min(out.leaf_down_ports, nodes_used);
    const int rail_leaves = divide_up(nodes_used, f.nics_per_leaf);  // leaves per rail
    if (out.planes > 1) {
      // A pod per plane: the leaves of its nics / planes rails for every node.
      f.pods = out.planes;
      f.rail_leaves_per_pod = rail_leaves;
      f.leaves_per_pod = rail_leaves * (nics / out.planes);
      f.leaves = f.pods * f.leaves_per_pod;
      f.spines_per_leaf = f.leaves_per_pod == 1 ? 0 : up_links(f.nics_per_leaf, out.oversubscription);
      return f;  // no core tier: nothing joins the planes
    }
    if (out.tiers == 3) {
      // A pod: the leaves of every rail for the nodes its spines' ports reach.
      const int per_pod = std::max(1, out.spine_down_ports / nics);
      f.pods = divide_up(rail_leaves, per_pod);
      f.rail_leaves_per_pod = f.pods == 1 ? rail_leaves : per_pod;
    } else {
      f.rail_leaves_per_pod = rail_leaves;
    }
    f.leaves_per_pod = f.rail_leaves_per_pod * nics;
  } else {
    const int64_t ports = static_cast<int64_t>(nodes_used) * nics;
    f.nics_per_leaf = static_cast<int>(std::min<int64_t>(out.leaf_down_ports, ports));
    const int leaves = divide_up(ports, f.nics_per_leaf);
    f.leaves_per_pod = out.tiers == 3 ? std::min(out.spine_down_ports, leaves) : leaves;
    f.pods = divide_up(leaves, f.leaves_per_pod);
  }
  f.leaves = f.pods * f.leaves_per_pod;
  // Enough spines that a leaf's down:up bandwidth equals the oversubscription; likewise
  // cores for a spine.
  f.spines_per_leaf = f.leaves == 1 || out.rail_only ? 0 : up_links(f.nics_per_leaf, out.oversubscription);
  f.cores_per_spine = f.pods == 1 ? 0 : up_links(f.leaves_per_pod, out.spine_oversubscription);
  return f;
}

std::string RadixProblem(const Topology& t, const FabricShape& f) {
  const ScaleOut& out = t.scale_out;
  if (f.leaves == 0 || (out.radix <= 0 && !out.rail_only)) return "";
  const std::string radix = "more than the radix (" + std::to_string(out.radix) + ")";
  if (out.rail_only) {  // one leaf per rail: the rail's nodes must fit its ports
    const int rail_leaves = f.leaves / std::max(1, out.nics_per_node);
    if (rail_leaves > 1) {
      return "a rail-only fabric has one leaf per rail, and these nodes need " + std::to_string(rail_leaves) +
             " leaves per rail (leaf_down_ports " + std::to_string(out.leaf_down_ports) + ")";
    }
    if (out.radix > 0 && out.leaf_down_ports > out.radix)
      return "leaf switches need " + std::to_string(out.leaf_down_ports) + " ports, " + radix;
    return "";
  }
  const int leaf_up = std::max(1, static_cast<int>(std::ceil(out.leaf_down_ports / out.oversubscription - 1e-9)));
  if (out.leaf_down_ports + leaf_up > out.radix) {
    return "leaf switches need " + std::to_string(out.leaf_down_ports + leaf_up) + " ports (" +
           std::to_string(out.leaf_down_ports) + " down, " + std::to_string(leaf_up) + " up), " + radix;
  }
  if (out.planes > 1 && f.leaves_per_pod > out.radix) {
    return std::to_string(f.leaves_per_pod) + " leaves per plane need spine switches of " +
           std::to_string(f.leaves_per_pod) + " ports (one per leaf of the plane), " + radix +
           ": more planes, or fewer nodes (a plane is two tiers)";
  }
  if (out.tiers == 2 && out.planes == 1 && f.leaves > out.radix) {
    return std::to_string(f.leaves) + " leaves need spine switches of " + std::to_string(f.leaves) +
           " ports (one per leaf), " + radix + ": give the fabric a core tier (scale_out.tiers: 3 and spine_down_ports)";
  }
  if (out.tiers == 3) {
    const int spine_up =
        std::max(1, static_cast<int>(std::ceil(out.spine_down_ports / out.spine_oversubscription - 1e-9)));
    if (out.spine_down_ports + spine_up > out.radix) {
      return "spine switches need " + std::to_string(out.spine_down_ports + spine_up) + " ports (" +
             std::to_string(out.spine_down_ports) + " down, " + std::to_string(spine_up) + " up), " + radix;
    }
    if (f.pods > out.radix) {
      return std::to_string(f.pods) + " pods need core switches of " + std::to_string(f.pods) + " ports (one per pod), " +
             radix + ": a fourth tier, which epsim does not model";
    }
  }
  return "";
}

void CheckGpusFit(const Topology& topology, int gpus, const std::string& file,
                  const std::string& key) {
  if (gpus > topology.total_gpus()) {
    throw ConfigError(file, key, std::to_string(gpus),
                      "more GPUs than nodes x gpus_per_node = " +
                          std::to_string(topology.nodes) + " x " +
                          std::to_string(topology.gpus_per_node) + " in topology '" +
                          topology.name + "' (raise --nodes)");
  }
}

}  // namespace epsim
