// epsim tests: strict YAML reading (common/yaml.h): every loader refuses a key given twice.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "common/yaml.h"

namespace epsim {
namespace {

// The ConfigError LoadYamlString throws for `text`; fails the test when none.
ConfigError ErrorOf(const std::string& text) {
  try {
    LoadYamlString(text, "t.yaml");
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted:\n" << text;
  return ConfigError("", "", "", "");
}

TEST(YamlTest, DuplicateKeysAreRefusedWithBothLines) {
  const ConfigError top = ErrorOf("name: a\nnodes: 2\nnodes: 4\n");
  EXPECT_EQ(top.file(), "t.yaml");
  EXPECT_EQ(top.key(), "nodes");
  EXPECT_STREQ(top.what(), "t.yaml: nodes: given twice (lines 2 and 3): give each key once");
  const ConfigError nested = ErrorOf("workload:\n  gpus: 8\n  steps: 2\n  gpus: 16\n");
  EXPECT_EQ(nested.key(), "workload.gpus");
  EXPECT_NE(std::string(nested.what()).find("lines 2 and 4"), std::string::npos) << nested.what();
  const ConfigError flow = ErrorOf("a: {b: 1, b: 2}\n");
  EXPECT_EQ(flow.key(), "a.b");
  const ConfigError in_list = ErrorOf("rows:\n  - {x: 1}\n  - {x: 1, x: 2}\n");
  EXPECT_EQ(in_list.key(), "rows[1].x");
  // The same key in two mappings is fine.
  EXPECT_NO_THROW(LoadYamlString("a: {x: 1}\nb: {x: 1}\n", "t.yaml"));
}

TEST(YamlTest, DeepNestingDoesNotOverflow) {
  std::string text = "a: ";
  for (int i = 0; i < 5000; ++i) text += "[";
  for (int i = 0; i < 5000; ++i) text += "]";
  try {
    LoadYamlString(text + "\n", "deep.yaml");
  } catch (const ConfigError&) {
  }
}

TEST(YamlTest, StrictMapsNameTheKeyPath) {
  const YAML::Node root = LoadYamlString("scale_out: {nics: x, extra: 1}\n", "t.yaml");
  YamlMap top(root, "t.yaml", "");
  YamlMap out = top.Child("scale_out");
  try {
    out.Int("nics", 1);
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "t.yaml: scale_out.nics: 'x': expected a whole number");
  }
  try {
    out.Finish();
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "scale_out.extra");
  }
}

}  // namespace
}  // namespace epsim
