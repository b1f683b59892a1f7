// epsim tests: topology loading, validation errors, and the bundled clusters.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "common/yaml.h"
#include "sim/config/topology.h"

namespace epsim {
namespace {

constexpr char kValid[] = R"(name: t
gpu: h100
nodes: 2
gpus_per_node: 8
scale_up:
  domain_gpus: 8
  bandwidth: 450GB/s
  latency: 1us
scale_out:
  nics_per_node: 8
  nic_bandwidth: 400Gbps
  nic_latency: 0.6us
  switch_latency: 330ns
  leaf_down_ports: 32
  oversubscription: 1
  rail_optimized: true
)";

// Replaces the first occurrence of `from` in the valid topology.
std::string With(const std::string& from, const std::string& to) {
  std::string text = kValid;
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(TopologyTest, ParsesUnitsAndShape) {
  Topology t = ParseTopology(kValid, "t.yaml");
  EXPECT_EQ(t.total_gpus(), 16);
  EXPECT_DOUBLE_EQ(t.scale_up.bandwidth_Bps, 450e9);
  EXPECT_DOUBLE_EQ(t.scale_out.nic_bandwidth_Bps, 50e9);
  EXPECT_DOUBLE_EQ(t.scale_up.latency_s, 1e-6);
  EXPECT_DOUBLE_EQ(t.scale_out.switch_latency_s, 330e-9);
  EXPECT_TRUE(t.scale_out.rail_optimized);
  EXPECT_EQ(t.NicOf(13), 5);
  EXPECT_EQ(t.NodeOf(13), 1);
}

TEST(TopologyTest, EfficiencyScalesBandwidth) {
  Topology t = ParseTopology(With("latency: 1us", "latency: 1us\n  efficiency: 0.8"), "t.yaml");
  EXPECT_DOUBLE_EQ(t.scale_up.bandwidth_Bps, 360e9);
  EXPECT_DOUBLE_EQ(t.scale_up.line_rate_Bps, 450e9);
}

TEST(TopologyTest, NodesOverride) {
  EXPECT_EQ(ParseTopology(kValid, "t.yaml", 128).total_gpus(), 1024);
}

TEST(TopologyTest, OneDomainNeedsNoFabric) {
  std::string text = kValid;
  text = text.substr(0, text.find("scale_out:"));
  Topology t = ParseTopology(text, "t.yaml", 1);
  EXPECT_EQ(t.scale_out.nics_per_node, 0);
}

struct BadCase {
  std::string name;
  std::string yaml;
  std::string key;  // the key the error must name
};

std::vector<BadCase> BadCases() {
  return {
      {"unknown top key", std::string(kValid) + "colour: red\n", "colour"},
      {"unknown nested key", With("latency: 1us", "latency: 1us\n  speed: 3"), "scale_up.speed"},
      {"missing name", With("name: t\n", ""), "name"},
      {"missing nodes", With("nodes: 2\n", ""), "nodes"},
      {"missing scale_up", With("scale_up:\n  domain_gpus: 8\n  bandwidth: 450GB/s\n  latency: 1us\n", ""), "scale_up"},
      {"bandwidth without unit", With("450GB/s", "450"), "scale_up.bandwidth"},
      {"bandwidth bad unit", With("450GB/s", "450GiB/s"), "scale_up.bandwidth"},
      {"bandwidth zero", With("450GB/s", "0GB/s"), "scale_up.bandwidth"},
      {"bandwidth negative", With("400Gbps", "-400Gbps"), "scale_out.nic_bandwidth"},
      {"latency bad unit", With("latency: 1us", "latency: 1parsec"), "scale_up.latency"},
      {"latency not a number", With("330ns", "fast"), "scale_out.switch_latency"},
      {"nodes zero", With("nodes: 2", "nodes: 0"), "nodes"},
      {"nodes fractional", With("nodes: 2", "nodes: 2.5"), "nodes"},
      {"gpus_per_node text", With("gpus_per_node: 8", "gpus_per_node: eight"), "gpus_per_node"},
      {"nics do not divide gpus", With("nics_per_node: 8", "nics_per_node: 3"), "scale_out.nics_per_node"},
      {"more nics than gpus, not a multiple", With("nics_per_node: 8", "nics_per_node: 12"), "scale_out.nics_per_node"},
      {"domain not whole nodes", With("domain_gpus: 8", "domain_gpus: 12"), "scale_up.domain_gpus"},
      {"rail_optimized not bool", With("rail_optimized: true", "rail_optimized: maybe"), "scale_out.rail_optimized"},
      {"efficiency above one", With("latency: 1us", "latency: 1us\n  efficiency: 1.5"), "scale_up.efficiency"},
      {"oversubscription below one", With("oversubscription: 1", "oversubscription: 0.5"), "scale_out.oversubscription"},
      {"scale_up not a map", With("scale_up:\n  domain_gpus: 8\n  bandwidth: 450GB/s\n  latency: 1us\n", "scale_up: fast\n"), "scale_up"},
      {"fabric missing for two domains", std::string(kValid).substr(0, std::string(kValid).find("scale_out:")), "scale_out"},
      {"nan efficiency", With("latency: 1us", "latency: 1us\n  efficiency: .nan"), "scale_up.efficiency"},
  };
}

// More NICs than GPUs: each GPU has nics / gpus of them (striping, fabric_layout.h); NIC
// i of GPU g's stripes are node NICs g k .. g k + k - 1.
TEST(TopologyTest, SeveralNicsPerGpu) {
  const Topology t = ParseTopology(With("nics_per_node: 8", "nics_per_node: 32"), "p5.yaml");
  EXPECT_EQ(t.NicsPerGpu(), 4);
  EXPECT_EQ(t.NicOf(3), 12);
  EXPECT_EQ(t.NicOf(3, 2), 14);
  EXPECT_EQ(t.NicOf(8 + 7, 3), 31);  // node 1's last GPU, last stripe
  const Topology shared = ParseTopology(With("nics_per_node: 8", "nics_per_node: 4"), "shared.yaml");
  EXPECT_EQ(shared.NicsPerGpu(), 1);
  EXPECT_EQ(shared.NicOf(5), 2);  // two GPUs per NIC
}

TEST(TopologyTest, MalformedFilesNameTheKey) {
  std::vector<BadCase> cases = BadCases();
  ASSERT_GE(cases.size(), 15u);
  for (const BadCase& c : cases) {
    try {
      ParseTopology(c.yaml, "bad.yaml");
      ADD_FAILURE() << c.name << ": no error";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.key(), c.key) << c.name << ": " << e.what();
      EXPECT_EQ(e.file(), "bad.yaml") << c.name;
      EXPECT_NE(std::string(e.what()).find(c.key), std::string::npos) << c.name;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << c.name << ": one line";
    }
  }
}

TEST(TopologyTest, NotYamlAtAll) {
  EXPECT_THROW(ParseTopology("[1, 2", "bad.yaml"), ConfigError);
  EXPECT_THROW(ParseTopology("", "bad.yaml"), ConfigError);
  EXPECT_THROW(ParseTopology(std::string("a\0b", 3), "bad.yaml"), ConfigError);
  EXPECT_THROW(LoadTopology("no/such/file.yaml"), ConfigError);
}

TEST(TopologyTest, TooManyGpusIsAnError) {
  Topology t = ParseTopology(kValid, "t.yaml");
  CheckGpusFit(t, 16, "s.yaml", "workload.gpus");
  try {
    CheckGpusFit(t, 17, "s.yaml", "workload.gpus");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "workload.gpus");
    EXPECT_EQ(e.value(), "17");
  }
}

// The bundled fabrics' sizes by hand. dgx-h100 (radix 64, 32 nodes per rail leaf): 256 nodes
// are 64 leaves, the most a 64-port spine serves; 257 need 72. dgx-h100-superpod: pods of
// 128 nodes (4 leaves per rail), 32 spines per pod, 32 cores per spine plane; 64 pods (8192
// nodes) fill a core switch's 64 ports. cloud-h100-2to1: 16 cores per plane (2:1).
TEST(TopologyTest, BundledFabricsAndTheirLimits) {
  const Topology h100 = LoadTopology("topologies/dgx-h100.yaml");
  EXPECT_EQ(ShapeFabric(h100, 256).leaves, 64);
  EXPECT_EQ(RadixProblem(h100, ShapeFabric(h100, 256)), "");
  EXPECT_EQ(ShapeFabric(h100, 257).leaves, 72);
  EXPECT_NE(RadixProblem(h100, ShapeFabric(h100, 257)).find("72 leaves need spine switches of 72 ports"),
            std::string::npos);
  const Topology pod = LoadTopology("topologies/dgx-h100-superpod.yaml");
  const FabricShape f = ShapeFabric(pod, 1024);
  EXPECT_EQ(f.pods, 8);
  EXPECT_EQ(f.leaves_per_pod, 32);
  EXPECT_EQ(f.leaves, 256);
  EXPECT_EQ(f.spines_per_leaf, 32);
  EXPECT_EQ(f.cores_per_spine, 32);
  EXPECT_EQ(f.cores(), 1024);
  EXPECT_EQ(ShapeFabric(pod, 128).pods, 1);  // one pod: no core tier
  EXPECT_EQ(ShapeFabric(pod, 128).cores_per_spine, 0);
  EXPECT_EQ(RadixProblem(pod, ShapeFabric(pod, 8192)), "");
  EXPECT_NE(RadixProblem(pod, ShapeFabric(pod, 8193)).find("65 pods need core switches of 65 ports"),
            std::string::npos);
  const Topology cloud = LoadTopology("topologies/cloud-h100-2to1.yaml");
  EXPECT_EQ(ShapeFabric(cloud, 256).cores_per_spine, 16);
  EXPECT_EQ(LoadTopology("topologies/p5-like-efa.yaml").NicsPerGpu(), 4);
  // rail-only-h100: one 64-port switch per rail, no spines: 64 nodes fit, 65 do not.
  const Topology rails = LoadTopology("topologies/rail-only-h100.yaml");
  EXPECT_EQ(ShapeFabric(rails, 64).leaves, 8);
  EXPECT_EQ(ShapeFabric(rails, 64).spines_per_leaf, 0);
  EXPECT_EQ(RadixProblem(rails, ShapeFabric(rails, 64)), "");
  EXPECT_NE(RadixProblem(rails, ShapeFabric(rails, 65)).find("2 leaves per rail"), std::string::npos);
  // h800-mpft: 8 planes, each a two-tier fat tree of 64-port switches (32 down, 32 up):
  // 64 leaves of 32 NICs per plane, 2048 nodes (16384 GPUs, Zhao et al. 2025); one more
  // node needs 65 leaves per plane. 32 spines per plane, 256 in all; no core.
  const Topology mpft = LoadTopology("topologies/h800-mpft.yaml");
  const FabricShape m = ShapeFabric(mpft, 2048);
  EXPECT_EQ(m.pods, 8);
  EXPECT_EQ(m.leaves_per_pod, 64);
  EXPECT_EQ(m.leaves, 512);
  EXPECT_EQ(m.spines_per_leaf, 32);
  EXPECT_EQ(m.spines(), 256);
  EXPECT_EQ(m.cores(), 0);
  EXPECT_EQ(RadixProblem(mpft, m), "");
  EXPECT_NE(RadixProblem(mpft, ShapeFabric(mpft, 2049)).find("65 leaves per plane need spine switches of 65 ports"),
            std::string::npos);
  // Without planes the same nodes are one fat tree of 512 leaves: spines of 512 ports.
  Topology one_plane = mpft;
  one_plane.scale_out.planes = 1;
  EXPECT_NE(RadixProblem(one_plane, ShapeFabric(one_plane, 2048)).find("512 leaves need spine switches"),
            std::string::npos);
  EXPECT_TRUE(mpft.NoFabricRoute(0, 9));    // NIC 0 to NIC 1 of another node: another plane
  EXPECT_FALSE(mpft.NoFabricRoute(0, 8));   // NIC 0 to NIC 0: one plane
  EXPECT_FALSE(mpft.NoFabricRoute(0, 1));   // one node: NVLink
}

TEST(TopologyTest, BundledTopologiesLoad) {
  for (const char* name : {"dgx-h100", "dgx-h200", "h800-ib", "gb200-nvl72", "dgx-a100-hdr", "dgx-h100-superpod",
                           "cloud-h100-2to1", "p5-like-efa", "rail-only-h100", "h800-mpft"}) {
    Topology t = LoadTopology(std::string("topologies/") + name + ".yaml");
    EXPECT_EQ(t.name, name);
    EXPECT_GT(t.scale_up.bandwidth_Bps, 0);
    EXPECT_GT(t.scale_out.nic_bandwidth_Bps, 0) << name;
  }
  // Datasheet line rates, per direction per GPU, and the cited efficiencies applied to them.
  const Topology h100 = LoadTopology("topologies/dgx-h100.yaml");
  EXPECT_DOUBLE_EQ(h100.scale_up.line_rate_Bps, 450e9);
  EXPECT_NEAR(h100.scale_up.bandwidth_Bps, 18 * 20.6e9, 1);  // NCCL's SM90_NVLINK_BW per link
  EXPECT_DOUBLE_EQ(h100.scale_out.nic_line_rate_Bps, 50e9);
  EXPECT_NEAR(h100.scale_out.nic_bandwidth_Bps, 47e9, 1);
  EXPECT_DOUBLE_EQ(LoadTopology("topologies/gb200-nvl72.yaml").scale_up.line_rate_Bps, 900e9);
  EXPECT_NEAR(LoadTopology("topologies/h800-ib.yaml").scale_up.bandwidth_Bps, 160e9, 1);
  EXPECT_DOUBLE_EQ(LoadTopology("topologies/dgx-a100-hdr.yaml").scale_out.nic_line_rate_Bps, 25e9);
}

}  // namespace
}  // namespace epsim
