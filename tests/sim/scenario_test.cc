// epsim tests: scenario files, flag overrides, and their errors.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "sim/config/inputs.h"
#include "sim/config/scenario.h"

namespace epsim {
namespace {

std::string WriteTemp(const std::string& name, const std::string& text) {
  std::string path = std::string(::testing::TempDir()) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

constexpr char kScenario[] = R"(name: s
topology: dgx-h100
model: {hidden: 1024, expert_ffn: 512, experts: 16, top_k: 2}
workload: {gpus: 8, tokens_per_gpu: 128}
)";

TEST(ScenarioTest, DefaultsAndFields) {
  Scenario s = LoadScenario(WriteTemp("s.yaml", kScenario), {});
  EXPECT_EQ(s.hidden, 1024);
  EXPECT_EQ(s.steps, 1);
  EXPECT_EQ(s.capacity_factor, 0);  // dropless by default
  EXPECT_EQ(s.dispatch_dtype, Dtype::kBf16);
  EXPECT_EQ(s.routing.kind, RoutingSpec::Kind::kUniform);
}

TEST(ScenarioTest, FlagsOverrideFields) {
  Scenario s = LoadScenario(WriteTemp("s.yaml", kScenario),
                            {{"--top-k", "4"}, {"--routing", "zipf:1.1"}, {"--capacity-factor", "1.25"},
                             {"--dispatch-dtype", "fp8"}, {"--nodes", "4"}});
  EXPECT_EQ(s.top_k, 4);
  EXPECT_EQ(s.routing.parameter, 1.1);
  EXPECT_EQ(s.capacity_factor, 1.25);
  EXPECT_EQ(s.nodes, 4);
  EXPECT_EQ(s.sources.at("model.top_k").origin, "--top-k");
  EXPECT_EQ(s.sources.at("model.top_k").text, "4");
  EXPECT_EQ(s.sources.at("model.hidden").origin, s.file);
  EXPECT_EQ(s.sources.at("workload.steps").origin, "default");
}

TEST(ScenarioTest, TokenBytes) {
  EXPECT_EQ(Scenario::TokenBytes(Dtype::kBf16, 7168), 14336);
  EXPECT_EQ(Scenario::TokenBytes(Dtype::kFp8, 7168), 7168 * (1 + 4.0 / 128));
}

// The scenario's inputs, resolved and checked (every check across fields happens there).
SimulationInputs Resolve(const std::string& path, const std::vector<std::pair<std::string, std::string>>& flags) {
  return ResolveInputs(LoadScenario(path, flags));
}

void ExpectError(const std::string& yaml, const std::vector<std::pair<std::string, std::string>>& flags,
                 const std::string& key) {
  const std::string path = WriteTemp("bad.yaml", yaml);
  try {
    Resolve(path, flags);
    ADD_FAILURE() << "no error for " << key;
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

TEST(ScenarioTest, BadValuesNameTheKeyOrFlag) {
  const std::string base = kScenario;
  ExpectError(base + "colour: red\n", {}, "colour");
  ExpectError(base + "strategy: {capacity: 1}\n", {}, "strategy.capacity");
  ExpectError("topology: x\n", {}, "model.hidden");
  ExpectError(base, {{"--top-k", "0"}}, "--top-k");
  ExpectError(base, {{"--top-k", "17"}}, "--top-k");  // more than experts
  ExpectError(base, {{"--tokens-per-gpu", "-5"}}, "--tokens-per-gpu");
  ExpectError(base, {{"--routing", "pareto"}}, "--routing");
  ExpectError(base, {{"--routing", "hot:0.9"}}, "--routing");  // share > 1/top_k
  ExpectError(base, {{"--capacity-factor", "0"}}, "--capacity-factor");
  ExpectError(base, {{"--capacity-factor", "nan"}}, "--capacity-factor");
  ExpectError(base, {{"--dispatch-dtype", "fp4"}}, "--dispatch-dtype");
  ExpectError(base, {{"--gpus", "24"}}, "--gpus");  // 24 GPUs, 16 experts
  ExpectError(base, {{"--hidden", "99999999999999999999"}}, "--hidden");
  ExpectError(base, {{"--colour", "red"}}, "--colour");
  ExpectError("model: [1, 2]\n", {}, "model");
  ExpectError(base, {{"--a2a", "ring"}}, "--a2a");
  ExpectError(base, {{"--node-limit", "-1"}}, "--node-limit");
  ExpectError(base, {{"--placement", "random"}}, "--placement");
  ExpectError(base, {{"--placement", "eplb"}, {"--redundant-experts", "3"}}, "--redundant-experts");
  ExpectError(base, {{"--rebalance-interval", "0"}}, "--rebalance-interval");
  ExpectError(base, {{"--engine", "ns3"}}, "--engine");
  ExpectError(base, {{"--token-spread", "lognormal:-1"}}, "--token-spread");
  ExpectError(base, {{"--token-spread", "pareto:2"}}, "--token-spread");
  ExpectError(base, {{"--drift-steps", "-2"}}, "--drift-steps");
  ExpectError(base, {{"--balance", "1.5"}}, "--balance");
  ExpectError(base, {{"--balance", "-0.1"}}, "--balance");
}

TEST(ScenarioTest, Bursts) {
  EXPECT_EQ(LoadScenario(WriteTemp("s.yaml", kScenario), {}).burst_every, 0);
  const Scenario s = LoadScenario(WriteTemp("s.yaml", kScenario), {{"--burst", "50:0.1"}});
  EXPECT_EQ(s.burst_every, 50);
  EXPECT_EQ(s.burst_share, 0.1);
  bool listed = false;
  for (const auto& [key, value] : s.Fields()) {
    if (key != "workload.burst") continue;
    EXPECT_EQ(value, "50:0.1");
    listed = true;
  }
  EXPECT_TRUE(listed);
  const Scenario f = LoadScenario(WriteTemp("burst.yaml", R"(topology: dgx-h100
model: {hidden: 1024, expert_ffn: 512, experts: 16, top_k: 2}
workload: {gpus: 8, tokens_per_gpu: 128, burst: "10:0.5"}
)"), {});
  EXPECT_EQ(f.burst_every, 10);
  EXPECT_EQ(f.burst_share, 0.5);  // exactly 1/top_k
}

TEST(ScenarioTest, BadBurstsNameTheKeyAndValue) {
  const std::string base = kScenario;
  for (const char* bad : {"0:0.1", "10:0", "-3:0.1", "x", "10", "10:", ":0.1", "10:abc", "10:nan",
                          "10:1.5", "2.5:0.1", "99999999999999999999:0.1", "1000001:0.1"})
    ExpectError(base, {{"--burst", bad}}, "--burst");
  ExpectError(base, {{"--burst", "10:0.5"}, {"--top-k", "8"}}, "--burst");  // share > 1/top_k
  ExpectError(R"(topology: dgx-h100
model: {hidden: 1024, expert_ffn: 512, experts: 16, top_k: 8}
workload: {gpus: 8, tokens_per_gpu: 128, burst: "10:0.5"}
)", {}, "workload.burst");
  try {
    Resolve(WriteTemp("s.yaml", kScenario), {{"--burst", "10:0.5"}, {"--top-k", "8"}});
    ADD_FAILURE() << "a burst share over 1/top_k";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "command line: --burst: '10:0.5': burst share exceeds 1/model.top_k = 0.125: a token "
              "picks an expert at most once");
  }
}

// A topology of 8 nodes whose NVLink domain is one node of `domain` GPUs, as a file.
std::string DomainsOf(int domain) {
  return WriteTemp("domains" + std::to_string(domain) + ".yaml",
                   "name: d\ngpu: h100\nnodes: 8\ngpus_per_node: " + std::to_string(domain) +
                       "\nscale_up: {domain_gpus: " + std::to_string(domain) +
                       ", bandwidth: 450GB/s, latency: 1us}\n"
                       "scale_out: {nics_per_node: 1, nic_bandwidth: 400Gbps, nic_latency: 1us, "
                       "switch_latency: 1us, leaf_down_ports: 64, rail_optimized: true}\n");
}

TEST(ScenarioTest, HierarchicalEplbAndItsNodeLimit) {
  const std::string path = WriteTemp("s.yaml", kScenario);
  const std::vector<std::pair<std::string, std::string>> hierarchical = {
      {"--placement", "eplb-hierarchical"}, {"--redundant-experts", "8"}, {"--node-limit", "2"}};
  const Scenario s = LoadScenario(path, hierarchical);
  EXPECT_EQ(s.placement, PlacementPolicy::kEplbHierarchical);
  EXPECT_TRUE(s.UsesEplb());
  EXPECT_EQ(s.node_limit, 2);
  // More GPUs than experts: each expert's copies still stay in one node.
  EXPECT_EQ(Resolve(path, {{"--placement", "eplb-hierarchical"}, {"--redundant-experts", "16"},
                           {"--gpus", "32"}, {"--node-limit", "2"}}).scenario.gpus, 32);
  const std::string base = kScenario;
  ExpectError(base, {{"--placement", "eplb-hierarchical"}, {"--redundant-experts", "3"}}, "--redundant-experts");
  ExpectError(base, {{"--placement", "eplb"}, {"--node-limit", "2"}}, "--node-limit");
  try {
    Resolve(path, {{"--placement", "eplb"}, {"--node-limit", "2"}});
    ADD_FAILURE() << "a node limit with flat eplb";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("eplb-hierarchical"), std::string::npos) << e.what();
  }
  // The topology's domains: 8 GPUs are 1 domain of 8, 2 of 4, 4 of 2, 8 of 1.
  auto on = [&](int domain, std::vector<std::pair<std::string, std::string>> flags) {
    flags.emplace_back("--topology", DomainsOf(domain));
    return Resolve(path, flags);
  };
  EXPECT_NO_THROW(on(8, hierarchical));
  EXPECT_NO_THROW(on(16, hierarchical));  // fewer GPUs than a domain: one domain
  EXPECT_NO_THROW(on(2, hierarchical));   // 16 experts in 4 groups of 4
  try {
    on(3, hierarchical);
    ADD_FAILURE() << "8 GPUs in domains of 3";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "--placement");
    EXPECT_EQ(std::string(e.what()),
              "command line: --placement: 'eplb-hierarchical': needs whole NVLink domains: "
              "workload.gpus (8) must be a multiple of 3");
  }
  const std::string file = WriteTemp("h.yaml", base + "strategy: {placement: eplb-hierarchical, redundant_experts: 8}\n");
  try {
    Resolve(file, {{"--experts", "20"}, {"--redundant-experts", "4"}, {"--topology", DomainsOf(1)}});
    ADD_FAILURE() << "20 experts in 8 domains";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), file);
    EXPECT_EQ(e.key(), "strategy.placement");
    EXPECT_NE(std::string(e.what()).find("model.experts (20) must be a multiple of the 8 domains"),
              std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(on(3, {}));  // other placements: no check
  // A node limit whose domains hold fewer experts than top_k: 16 experts on 8 GPUs in
  // domains of 1 GPU hold 2 experts each; top-4 within 1 domain cannot be met.
  try {
    on(1, {{"--node-limit", "1"}, {"--top-k", "4"}});
    ADD_FAILURE() << "top-4 from one domain of 2 experts";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "command line: --node-limit: '1': its NVLink domains hold at most 2 experts, fewer than "
              "model.top_k = 4");
  }
  EXPECT_NO_THROW(on(1, {{"--node-limit", "2"}, {"--top-k", "4"}}));
}

TEST(ScenarioTest, PerTokenTraces) {
  // A trace next to the scenario file, named relative to it.
  WriteTemp("tokens.csv", "step,gpu,token,experts\n0,0,0,3 1\n0,0,1,\"0 15\"\n");
  const std::string base = kScenario;
  const std::string path = WriteTemp("t.yaml", base + "strategy: {capacity_factor: 1.25}\n");
  const Scenario s = LoadScenario(path, {});
  EXPECT_EQ(s.routing.kind, RoutingSpec::Kind::kUniform);
  const std::string trace_yaml = R"(topology: dgx-h100
model: {hidden: 1024, expert_ffn: 512, experts: 16, top_k: 2}
workload: {gpus: 8, tokens_per_gpu: 128, routing: "trace:tokens.csv"}
)";
  const Scenario t = LoadScenario(WriteTemp("t.yaml", trace_yaml), {});
  EXPECT_TRUE(t.routing.IsTokenTrace());
  EXPECT_EQ(t.routing.trace_choices, (std::vector<int32_t>{3, 1, 0, 15}));
  ExpectError(trace_yaml, {{"--node-limit", "1"}}, "--node-limit");
  ExpectError(trace_yaml, {{"--burst", "5:0.1"}}, "--burst");
  ExpectError(trace_yaml, {{"--balance", "0.5"}}, "--balance");
  // The trace's lists must match model.top_k: errors name the file and line.
  try {
    LoadScenario(WriteTemp("t.yaml", trace_yaml), {{"--top-k", "3"}});
    ADD_FAILURE() << "top-3 against a top-2 trace";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), ::testing::TempDir() + "/tokens.csv");
    EXPECT_NE(std::string(e.what()).find("tokens.csv: line 2: experts: '3 1': expected 3 experts"),
              std::string::npos) << e.what();
  }
}

// workload.layer_routing: a YAML list, one routing per MoE layer, traces relative to the
// file; a per-token trace in any layer fixes that layer's choices, so what would reshape
// them is refused as it is for workload.routing.
TEST(ScenarioTest, LayerRoutingList) {
  WriteTemp("layer_tokens.csv", "step,gpu,token,experts\n0,0,0,3 1\n");
  const std::string yaml = R"(topology: dgx-h100
model: {hidden: 1024, expert_ffn: 512, experts: 16, top_k: 2, layers: 3}
workload: {gpus: 8, tokens_per_gpu: 128, layer_routing: [zipf:1.2, "hot:0.1", "trace:layer_tokens.csv"]}
)";
  const Scenario s = LoadScenario(WriteTemp("layers.yaml", yaml), {});
  ASSERT_EQ(s.layer_routing.size(), 3u);
  EXPECT_EQ(s.RoutingOfLayer(0).kind, RoutingSpec::Kind::kZipf);
  EXPECT_EQ(s.RoutingOfLayer(1).parameter, 0.1);
  EXPECT_EQ(s.RoutingOfLayer(2).trace_choices, (std::vector<int32_t>{3, 1}));
  EXPECT_EQ(s.RoutingText(), "zipf:1.2; hot:0.1; trace:layer_tokens.csv");
  ExpectError(yaml, {{"--node-limit", "1"}}, "--node-limit");
  // A flag's layers over a file's single routing is what a user means; the flag's single
  // routing over a file's layers is a contradiction.
  std::string single = kScenario;
  single.replace(single.find("128}"), 4, "128, routing: zipf:1}");
  const SimulationInputs flagged = Resolve(WriteTemp("single.yaml", single), {{"--layer-routing", "uniform"}});
  EXPECT_EQ(flagged.scenario.RoutingOfLayer(0).kind, RoutingSpec::Kind::kUniform);
  ExpectError(yaml, {{"--routing", "uniform"}}, "workload.layer_routing");
}

// scenarios/README.md documents every field of the schema table, in its order, with its
// flag, and with its default where the README gives one as a value.
TEST(ScenarioTest, ReadmeDocumentsEveryField) {
  std::ifstream in("scenarios/README.md");
  ASSERT_TRUE(in.good());
  std::vector<std::vector<std::string>> rows;  // | `key` | `--flag` | default | meaning |
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream parts(line.substr(1));
    for (std::string cell; std::getline(parts, cell, '|');) {
      const size_t begin = cell.find_first_not_of(' '), end = cell.find_last_not_of(' ');
      cells.push_back(begin == std::string::npos ? "" : cell.substr(begin, end - begin + 1));
    }
    if (cells.size() >= 3 && cells[1].rfind("`--", 0) == 0) rows.push_back(cells);
  }
  const std::vector<ScenarioField>& schema = ScenarioSchema();
  ASSERT_EQ(rows.size(), schema.size());
  for (size_t i = 0; i < schema.size(); ++i) {
    const ScenarioField& f = schema[i];
    EXPECT_EQ(rows[i][0], "`" + std::string(f.key) + "`") << i;
    EXPECT_EQ(rows[i][1], "`" + std::string(f.flag) + "`") << f.key;
    const std::string& documented = rows[i][2];
    if (f.fallback == nullptr) {
      EXPECT_EQ(documented, "required") << f.key;
    } else if (documented.find(' ') == std::string::npos) {
      EXPECT_EQ(documented, f.fallback) << f.key;  // a value, not a description
    }
  }
}

TEST(ScenarioTest, MissingFile) {
  EXPECT_THROW(LoadScenario("does/not/exist.yaml", {}), ConfigError);
}

TEST(ScenarioTest, BundledScenariosLoad) {
  Scenario s = LoadScenario("scenarios/default.yaml", {});
  EXPECT_EQ(s.gpus, 64);
  EXPECT_EQ(s.top_k, 8);
  EXPECT_EQ(s.num_experts, 256);
  EXPECT_EQ(s.capacity_factor, 1.25);
}

}  // namespace
}  // namespace epsim
