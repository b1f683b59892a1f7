// epsim tests: small topologies for closed forms, shared by the replay and link-load tests.
#ifndef EPSIM_TESTS_SIM_TEST_TOPOLOGIES_H_
#define EPSIM_TESTS_SIM_TEST_TOPOLOGIES_H_

namespace epsim::testing {

// Two DGX-like nodes of 8 GPUs and 8 NICs, rail-optimized (GPU g uses NIC g % 8 of its node,
// on leaf g % 8); bandwidths chosen as round numbers so that closed forms are easy to read:
// NVLink 400 GB/s, NICs 400 Gb/s = 50 GB/s.
inline constexpr char kTwoNodeTopology[] = R"(
name: test-two-node
gpu: h100
nodes: 2
gpus_per_node: 8
scale_up: {domain_gpus: 8, bandwidth: 400GB/s, latency: 2us}
scale_out:
  nics_per_node: 8
  nic_bandwidth: 400Gbps
  nic_latency: 1us
  switch_latency: 500ns
  leaf_down_ports: 32
  oversubscription: 1
  rail_optimized: true
)";

// Two nodes of 2 GPUs and 8 NICs of 100 Gb/s = 12.5 GB/s: four NICs per GPU (GPU 0 has NICs
// 0-3 of node 0, GPU 1 NICs 4-7), rail-optimized with one leaf per rail.
inline constexpr char kFourNicsPerGpuTopology[] = R"(
name: test-four-nics-per-gpu
gpu: h100
nodes: 2
gpus_per_node: 2
scale_up: {domain_gpus: 2, bandwidth: 400GB/s, latency: 2us}
scale_out:
  nics_per_node: 8
  nic_bandwidth: 100Gbps
  nic_latency: 1us
  switch_latency: 500ns
  leaf_down_ports: 32
  oversubscription: 1
  rail_optimized: true
)";

}  // namespace epsim::testing

#endif  // EPSIM_TESTS_SIM_TEST_TOPOLOGIES_H_
