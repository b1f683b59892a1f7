// epsim config: topology loading and validation (see topology.h and topologies/README.md).
#include "sim/config/topology.h"

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
    out.Finish();
    if (so.nics_per_node > t.gpus_per_node || t.gpus_per_node % so.nics_per_node != 0) {
      throw ConfigError(file, "scale_out.nics_per_node", std::to_string(so.nics_per_node),
                        "NICs must divide the GPUs of a node (gpus_per_node = " +
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
