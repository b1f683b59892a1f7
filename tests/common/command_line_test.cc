// epsim tests: the one command-line syntax of every epsim command (common/command_line.h).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "common/command_line.h"
#include "common/error.h"

namespace epsim {
namespace {

FlagSpec Spec() {
  FlagSpec spec;
  spec.with_value = {"--out", "--jobs", "--vary"};
  spec.switches = {"--dry-run"};
  spec.repeatable = {"--vary"};
  spec.help_hint = "tool --help";
  spec.max_positionals = 1;
  spec.positional_name = "one file";
  return spec;
}

CommandLine Parse(std::vector<std::string> words) {
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data(), 1, Spec());
}

std::string ErrorOf(std::vector<std::string> words) {
  try {
    Parse(std::move(words));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(CommandLineTest, BothFlagForms) {
  const CommandLine a = Parse({"tool", "f.yaml", "--out", "d", "--jobs=4", "--dry-run", "--vary", "x=1", "--vary=y=2"});
  EXPECT_EQ(a.positionals, std::vector<std::string>{"f.yaml"});
  EXPECT_EQ(a.Get("--out"), "d");
  EXPECT_EQ(a.Get("--jobs"), "4");
  EXPECT_TRUE(a.Has("--dry-run"));
  ASSERT_EQ(a.flags.size(), 5u);
  EXPECT_EQ(a.flags[3].second, "x=1");
  EXPECT_EQ(a.flags[4].second, "y=2");  // only the first '=' separates
  EXPECT_FALSE(a.help);
  EXPECT_TRUE(Parse({"tool", "-h"}).help);
  EXPECT_EQ(Parse({"tool"}).Get("--out", "fallback"), "fallback");
}

TEST(CommandLineTest, MistakesAreOneLineNamingTheFlag) {
  EXPECT_EQ(ErrorOf({"tool", "--nope", "1"}), "command line: --nope: unknown flag (see tool --help)");
  EXPECT_EQ(ErrorOf({"tool", "--out"}), "command line: --out: missing value");
  EXPECT_EQ(ErrorOf({"tool", "--out="}), "command line: --out: empty value");
  EXPECT_EQ(ErrorOf({"tool", "--dry-run=yes"}), "command line: --dry-run: 'yes': takes no value");
  EXPECT_EQ(ErrorOf({"tool", "--out", "a", "--out=b"}), "command line: --out: 'b': given twice (give each flag once)");
  EXPECT_EQ(ErrorOf({"tool", "a", "b"}), "command line: 'b': unexpected argument (one file at most)");
}

TEST(CommandLineTest, WholeNumberFlags) {
  EXPECT_EQ(FlagInt("--jobs", "8", 1, 4096), 8);
  for (const char* bad : {"0", "4097", "two", "3.5", ""}) EXPECT_THROW(FlagInt("--jobs", bad, 1, 4096), ConfigError) << bad;
}

TEST(CommandLineTest, ExitCodesFollowTheErrorKind) {
  EXPECT_EQ(RunReportingErrors("t", [] { return 0; }), kExitOk);
  EXPECT_EQ(RunReportingErrors("t", []() -> int { throw ConfigError("f", "k", "v", "bad"); }), kExitBadInput);
  EXPECT_EQ(RunReportingErrors("t", []() -> int { throw std::runtime_error("disk full"); }), kExitRunFailed);
}

}  // namespace
}  // namespace epsim
