// epsim tests: sweep files to grids (sim/sweep/sweep_spec.h): counts, order, ids, errors.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/error.h"
#include "common/yaml.h"
#include "sim/sweep/sweep_spec.h"
#include "sim/sweep/sweep_runner.h"

namespace {

using epsim::ConfigError;
using epsim::ExpandSweep;
using epsim::ParseSweepText;
using epsim::SweepRun;
using epsim::SweepSpec;

// Parses `text`, expecting a ConfigError; returns its message.
std::string ErrorOf(const std::string& text) {
  try {
    ParseSweepText(text, "bad.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

std::string Flag(const SweepRun& run, const std::string& flag) {
  for (const auto& [f, v] : run.overrides)
    if (f == flag) return v;
  return "<unset>";
}

TEST(SweepGridTest, ProductOfAxes) {
  const SweepSpec spec = ParseSweepText(
      "base: default\n"
      "grid:\n"
      "  workload.routing: [uniform, zipf:0.5, zipf:1.0]\n"
      "  strategy.capacity_factor: [1.0, 1.25, none]\n"
      "  gpus: {from: 16, to: 64, step: 16}\n",
      "grid.yaml");
  // 3 routings x 3 capacity factors x 4 sizes (16, 32, 48, 64).
  EXPECT_EQ(spec.NumRuns(), 3 * 3 * 4);
  const auto runs = ExpandSweep(spec);
  ASSERT_EQ(runs.size(), 36u);
  EXPECT_EQ(spec.Columns(), (std::vector<std::string>{"routing", "capacity_factor", "gpus"}));
  // Row-major: the last axis varies fastest.
  EXPECT_EQ(runs[0].values, (std::vector<std::string>{"uniform", "1.0", "16"}));
  EXPECT_EQ(runs[1].values, (std::vector<std::string>{"uniform", "1.0", "32"}));
  EXPECT_EQ(runs[4].values, (std::vector<std::string>{"uniform", "1.25", "16"}));
  EXPECT_EQ(runs[35].values, (std::vector<std::string>{"zipf:1.0", "none", "64"}));
  EXPECT_EQ(Flag(runs[35], "--routing"), "zipf:1.0");
  EXPECT_EQ(Flag(runs[35], "--capacity-factor"), "none");
  EXPECT_EQ(runs[0].id, "routing=uniform_capacity_factor=1.0_gpus=16");
  EXPECT_EQ(runs[35].id, "routing=zipf-1.0_capacity_factor=none_gpus=64");
  std::set<std::string> ids;
  for (const auto& r : runs) ids.insert(r.id);
  EXPECT_EQ(ids.size(), runs.size());
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i].index, static_cast<int64_t>(i));
}

TEST(SweepGridTest, RangesClosedForm) {
  // {from, to, step}: floor((to - from) / step) + 1 values, both ends included.
  auto values = [](const std::string& range) {
    const auto spec = ParseSweepText("base: none\ngrid:\n  seed: " + range + "\n", "r.yaml");
    std::vector<std::string> out;
    for (const auto& run : ExpandSweep(spec)) out.push_back(run.values[0]);
    return out;
  };
  EXPECT_EQ(values("{from: 16, to: 64, step: 16}"), (std::vector<std::string>{"16", "32", "48", "64"}));
  EXPECT_EQ(values("{from: 1, to: 10, step: 4}"), (std::vector<std::string>{"1", "5", "9"}));
  EXPECT_EQ(values("{from: 8, to: 1024, times: 2}").size(), 8u);  // 8 .. 1024
  EXPECT_EQ(values("{from: 8, to: 1000, times: 2}").back(), "512");
  // Decimal steps print without float noise.
  EXPECT_EQ(values("{from: 0.1, to: 0.5, step: 0.1}"),
            (std::vector<std::string>{"0.1", "0.2", "0.3", "0.4", "0.5"}));
  EXPECT_EQ(values("{values: [3, 1, 2]}"), (std::vector<std::string>{"3", "1", "2"}));
  EXPECT_EQ(values("7"), (std::vector<std::string>{"7"}));
  EXPECT_EQ(values("{from: 5, to: 5, step: 1}"), (std::vector<std::string>{"5"}));
}

TEST(SweepGridTest, LinkedFieldsAreOneAxis) {
  const SweepSpec spec = ParseSweepText(
      "base: none\n"
      "set: {hidden: 1024, --expert-ffn: 512, model.experts: 32, top_k: 4, tokens-per-gpu: 64}\n"
      "grid:\n"
      "  \"topology, nodes, gpus\": [[dgx-h100, 2, 16], [gb200-nvl72, 4, 16]]\n"
      "  seed: [1, 2, 3]\n",
      "linked.yaml");
  EXPECT_EQ(spec.NumRuns(), 2 * 3);
  EXPECT_EQ(spec.Columns(), (std::vector<std::string>{"topology", "nodes", "gpus", "seed"}));
  const auto runs = ExpandSweep(spec);
  ASSERT_EQ(runs.size(), 6u);
  EXPECT_EQ(Flag(runs[3], "--topology"), "gb200-nvl72");
  EXPECT_EQ(Flag(runs[3], "--nodes"), "4");
  EXPECT_EQ(Flag(runs[3], "--seed"), "1");
  // `set:` accepts keys, flags and short names alike; fixed fields come first.
  EXPECT_EQ(runs[0].overrides[0], (std::pair<std::string, std::string>{"--hidden", "1024"}));
  EXPECT_EQ(Flag(runs[0], "--expert-ffn"), "512");
  EXPECT_EQ(Flag(runs[0], "--experts"), "32");
  EXPECT_EQ(Flag(runs[0], "--tokens-per-gpu"), "64");
  EXPECT_EQ(runs[5].id, "topology=gb200-nvl72_nodes=4_gpus=16_seed=3");
}

TEST(SweepGridTest, EmptyGridIsOneRun) {
  const auto spec = ParseSweepText("base: default\nset: {steps: 1}\n", "one.yaml");
  EXPECT_EQ(spec.NumRuns(), 1);
  const auto runs = ExpandSweep(spec);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].id, "base");
  EXPECT_TRUE(spec.Columns().empty());
}

TEST(SweepGridTest, IdsStayUniqueAfterSanitizing) {
  // "a:b" and "a-b" sanitize to the same folder name: a hash keeps them apart.
  const auto runs = ExpandSweep(ParseSweepText("base: none\ngrid:\n  name: [\"a:b\", a-b]\n", "n.yaml"));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_NE(runs[0].id, runs[1].id);
  EXPECT_EQ(runs[0].id.rfind("name=a-b-", 0), 0u) << runs[0].id;
}

TEST(SweepGridTest, BadFilesNameKeyAndValue) {
  std::string e = ErrorOf("base: default\ngrid:\n  no_such_field: [1, 2]\n");
  EXPECT_NE(e.find("bad.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("no_such_field"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown scenario field"), std::string::npos) << e;

  e = ErrorOf("grid:\n  seed: [1]\n");
  EXPECT_NE(e.find("base"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrid:\n  seed: []\n");
  EXPECT_NE(e.find("grid.seed"), std::string::npos) << e;
  EXPECT_NE(e.find("no values"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrid:\n  gpus: {from: 64, to: 16, step: 16}\n");
  EXPECT_NE(e.find("grid.gpus.to"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrid:\n  gpus: {from: 16, to: 64, step: -1}\n");
  EXPECT_NE(e.find("grid.gpus.step: '-1'"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrid:\n  gpus: {from: 16, to: 64}\n");
  EXPECT_NE(e.find("exactly one of step or times"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrid:\n  gpus: {from: abc, to: 64, step: 1}\n");
  EXPECT_NE(e.find("grid.gpus.from: 'abc'"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrid:\n  seed: [1, 2, 1]\n");
  EXPECT_NE(e.find("duplicate value"), std::string::npos) << e;

  e = ErrorOf("base: default\nset: {seed: 3}\ngrid:\n  --seed: [1, 2]\n");
  EXPECT_NE(e.find("set twice"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrid:\n  \"topology, nodes\": [[dgx-h100, 8], [gb200-nvl72]]\n");
  EXPECT_NE(e.find("list of 2 values"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrids:\n  seed: [1]\n");
  EXPECT_NE(e.find("grids"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrid:\n  seed: {from: 1, to: 1000000000, step: 1}\n");
  EXPECT_NE(e.find("more than 100000"), std::string::npos) << e;

  e = ErrorOf("base: default\ngrid:\n  seed: {from: 1, to: 1000, step: 1}\n  gpus: {from: 1, to: 1000, step: 1}\n"
              "  tokens_per_gpu: {from: 1, to: 1000, step: 1}\n");
  EXPECT_NE(e.find("more than 1000000 runs"), std::string::npos) << e;
}

}  // namespace
