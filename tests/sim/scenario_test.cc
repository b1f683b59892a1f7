// epsim tests: scenario files, flag overrides, and their errors.
#include <gtest/gtest.h>

#include <fstream>

#include "sim/config.h"
#include "sim/scenario.h"

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
  EXPECT_EQ(s.dispatch_dtype, "bf16");
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
  EXPECT_EQ(s.origin.at("model.top_k"), "--top-k");
}

TEST(ScenarioTest, TokenBytes) {
  EXPECT_EQ(Scenario::TokenBytes("bf16", 7168), 14336);
  EXPECT_EQ(Scenario::TokenBytes("fp8", 7168), 7168 * (1 + 4.0 / 128));
}

void ExpectError(const std::string& yaml, const std::vector<std::pair<std::string, std::string>>& flags,
                 const std::string& key) {
  const std::string path = WriteTemp("bad.yaml", yaml);
  try {
    LoadScenario(path, flags);
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
