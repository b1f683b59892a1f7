// epsim cli: `epsim compare` (see commands.h).
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "common/command_line.h"
#include "common/error.h"
#include "sim/cli/commands.h"
#include "sim/config/data_files.h"
#include "sim/config/scenario.h"
#include "sim/sweep/compare.h"

namespace epsim {
namespace {

void PrintUsage() {
  std::printf(
      "usage: epsim compare [SCENARIO] --vary FLAG=V1,V2[,...] [--vary ...] [--FLAG VALUE ...]\n"
      "                     [--out DIR] [--jobs N]\n"
      "\n"
      "Runs every combination of the --vary axes on SCENARIO (default: the bundled default)\n"
      "with the other flags fixed, and prints one row per variant. FLAG is any simulate flag\n"
      "without its dashes, e.g. a2a, capacity-factor, placement, routing, engine.\n"
      "Results go to DIR (default results/compare); completed variants are reused.\n");
}

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, separator);) parts.push_back(part);
  return parts;
}

// `--vary FLAG=V1,V2,...` as ("--FLAG", values).
std::pair<std::string, std::vector<std::string>> ParseAxis(const std::string& value) {
  const auto eq = value.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == value.size())
    throw ConfigError(kCommandLine, "--vary", value, "expected FLAG=V1,V2,...");
  std::vector<std::string> values = Split(value.substr(eq + 1), ',');
  if (values.empty() || std::count(values.begin(), values.end(), std::string()) > 0 || value.back() == ',')
    throw ConfigError(kCommandLine, "--vary", value, "empty value");
  const std::string flag = "--" + value.substr(0, eq);
  bool known = false;
  for (const auto& entry : ScenarioFlags()) known |= entry.first == flag;
  if (!known) throw ConfigError(kCommandLine, "--vary", value, "unknown flag " + flag + " (see epsim --help)");
  return {flag, values};
}

// A fixed flag for every variant; given again, the later value wins.
void SetFixed(CompareSpec& spec, const std::string& flag, const std::string& value) {
  for (auto& entry : spec.fixed) {
    if (entry.first == flag) {
      entry.second = value;
      return;
    }
  }
  spec.fixed.emplace_back(flag, value);
}

int Compare(int argc, char** argv) {
  FlagSpec flags;
  for (const auto& [flag, key] : ScenarioFlags()) {
    flags.with_value.insert(flag);
    flags.repeatable.insert(flag);  // the later one wins, as in `epsim simulate`
  }
  flags.with_value.insert({"--vary", "--out", "--jobs"});
  flags.repeatable.insert("--vary");
  flags.help_hint = "epsim compare --help";
  flags.max_positionals = 1;
  flags.positional_name = "one scenario";
  const CommandLine line = ParseCommandLine(argc, argv, 2, flags);
  if (line.help) {
    PrintUsage();
    return kExitOk;
  }
  CompareSpec spec;
  if (!line.positionals.empty()) spec.scenario = line.positionals[0];
  for (const auto& [flag, value] : line.flags) {
    if (flag == "--vary") spec.axes.push_back(ParseAxis(value));
    else if (flag == "--out") spec.out_dir = value;
    else if (flag == "--jobs") spec.jobs = static_cast<int>(FlagInt(flag, value, 1, 4096));
    else SetFixed(spec, flag, value);
  }
  if (spec.axes.empty()) throw ConfigError(kCommandLine, "--vary", "", "missing (at least one axis)");
  return RunCompare(spec, &RunSimulateCommand);
}

}  // namespace

int RunCompareCommand(int argc, char** argv) {
  return RunReportingErrors("epsim compare", [&] { return Compare(argc, argv); }, DisplayPath);
}

}  // namespace epsim
