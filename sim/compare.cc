// epsim: strategy comparison table (see compare.h).
#include "sim/compare.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "sim/config.h"
#include "sim/data_files.h"
#include "sim/scenario.h"
#include "sim/output_file.h"
#include "sim/simulation.h"
#include "sim/sweep.h"

namespace epsim {
namespace {

struct CompareArgs {
  std::string scenario = "default";
  std::string out_dir = "results/compare";
  std::string jobs;
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;  // flag, values
  std::vector<std::pair<std::string, std::string>> fixed;             // flag, value
};

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

CompareArgs Parse(int argc, char** argv) {
  CompareArgs args;
  bool have_scenario = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (have_scenario) throw ConfigError("command line", "", arg, "one scenario at most");
      args.scenario = arg;
      have_scenario = true;
      continue;
    }
    if (i + 1 >= argc) throw ConfigError("command line", arg, "", "missing value");
    std::string value = argv[++i];
    if (arg == "--vary") {
      const auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == value.size())
        throw ConfigError("command line", "--vary", value, "expected FLAG=V1,V2,...");
      std::vector<std::string> values = Split(value.substr(eq + 1), ',');
      if (values.empty() || std::count(values.begin(), values.end(), std::string()) > 0)
        throw ConfigError("command line", "--vary", value, "empty value");
      const std::string flag = "--" + value.substr(0, eq);
      bool known = false;
      for (const auto& entry : ScenarioFlags()) known |= entry.first == flag;
      if (!known) throw ConfigError("command line", "--vary", value, "unknown flag " + flag + " (see epsim --help)");
      args.axes.emplace_back(flag, values);
    } else if (arg == "--out") {
      args.out_dir = value;
    } else if (arg == "--jobs") {
      args.jobs = value;
    } else {
      args.fixed.emplace_back(arg, value);
    }
  }
  if (args.axes.empty()) throw ConfigError("command line", "--vary", "", "missing (at least one axis)");
  return args;
}

// YAML flow sequence of plain scalars, quoted so that values like "none" stay strings.
std::string YamlList(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + JsonString(values[i]);
  return out + "]";
}

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int Column(const std::string& name) const {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
  }
};

Table ReadCsv(const std::string& path) {
  Table t;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return t;
  t.header = Split(line, ',');
  while (std::getline(in, line)) t.rows.push_back(Split(line, ','));
  return t;
}

}  // namespace

int RunCompareCommand(int argc, char** argv, SimulateFn simulate) {
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      PrintUsage();
      return 0;
    }
  }
  CompareArgs args;
  try {
    args = Parse(argc, argv);
    // Every variant is checked here, so that an error names the flag the user wrote, not
    // the sweep file written on their behalf.
    const std::string path =
        args.scenario == "none" ? "" : ResolveDataFile("scenarios", args.scenario, "command line", "scenario");
    std::vector<size_t> index(args.axes.size(), 0);
    while (true) {
      std::vector<std::pair<std::string, std::string>> overrides = args.fixed;
      for (size_t a = 0; a < args.axes.size(); ++a)
        overrides.emplace_back(args.axes[a].first, args.axes[a].second[index[a]]);
      ResolveInputs(LoadScenario(path, overrides));
      size_t a = args.axes.size();
      while (a > 0 && ++index[a - 1] == args.axes[a - 1].second.size()) index[--a] = 0;
      if (a == 0) break;
    }
    MakeDirectories(args.out_dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "epsim compare: error: %s\n", DisplayPath(e.what()).c_str());
    return 2;
  }
  // The variants are a sweep: write its file and run it through the sweep command.
  std::string sweep = "# written by epsim compare\nbase: " + JsonString(args.scenario) + "\n";
  if (!args.fixed.empty()) {
    sweep += "set:\n";
    for (const auto& [flag, value] : args.fixed) sweep += "  " + JsonString(flag) + ": " + JsonString(value) + "\n";
  }
  sweep += "grid:\n";
  for (const auto& [flag, values] : args.axes) sweep += "  " + JsonString(flag) + ": " + YamlList(values) + "\n";
  const std::string sweep_path = args.out_dir + "/compare.yaml";
  WriteFileAtomically(sweep_path, sweep);
  std::vector<std::string> sweep_args = {argv[0], "sweep", sweep_path, "--out", args.out_dir};
  if (!args.jobs.empty()) {
    sweep_args.push_back("--jobs");
    sweep_args.push_back(args.jobs);
  }
  std::vector<char*> sweep_argv;
  for (std::string& a : sweep_args) sweep_argv.push_back(a.data());
  sweep_argv.push_back(nullptr);
  const int status = RunSweepCommand(static_cast<int>(sweep_args.size()), sweep_argv.data(), simulate);
  if (status == 2) return 2;

  // One row per variant: aggregate its steps from sweep.csv.
  const Table csv = ReadCsv(args.out_dir + "/sweep.csv");
  const int run_col = csv.Column("run");
  const int swept_first = 1;
  const int step_col = csv.Column("step");
  if (run_col < 0 || step_col < 0) {
    std::fprintf(stderr, "epsim compare: error: %s/sweep.csv: no results\n", args.out_dir.c_str());
    return 1;
  }
  std::vector<std::string> order;
  std::map<std::string, std::vector<const std::vector<std::string>*>> by_run;
  for (const auto& row : csv.rows) {
    if (by_run[row[run_col]].empty()) order.push_back(row[run_col]);
    by_run[row[run_col]].push_back(&row);
  }
  auto mean = [&](const std::vector<const std::vector<std::string>*>& rows, const char* name) {
    const int c = csv.Column(name);
    double s = 0;
    for (const auto* r : rows) s += std::stod((*r)[c]);
    return s / rows.size();
  };
  auto values = [&](const std::vector<const std::vector<std::string>*>& rows, const char* name) {
    const int c = csv.Column(name);
    std::vector<double> v;
    for (const auto* r : rows) v.push_back(std::stod((*r)[c]));
    return v;
  };
  std::printf("# epsim compare: %s, %zu variants (results in %s/runs)\n", args.scenario.c_str(),
              order.size(), args.out_dir.c_str());
  std::printf("#  %-58s %8s %8s %8s %8s %8s %9s %7s %8s %9s\n", "variant", "step", "p99",
              "dispatch", "expert", "combine", "stall max", "token", "dropped", "a2a disp");
  std::printf("#  %-58s %8s %8s %8s %8s %8s %9s %7s %8s %9s\n", "", "(ms)", "(ms)", "(ms)", "(ms)",
              "(ms)", "(ms)", "skew", "(%)", "(GB/s)");
  for (const std::string& run : order) {
    const auto& rows = by_run[run];
    std::string label;
    for (int c = swept_first; c < step_col; ++c)
      label += (label.empty() ? "" : " ") + csv.header[c] + "=" + (*rows[0])[c];
    const double dropped = mean(rows, "dropped_tokens"), assignments = mean(rows, "assignments");
    std::vector<double> stall = values(rows, "stall_max_s");
    std::printf("   %-58s %8.3f %8.3f %8.3f %8.3f %8.3f %9.3f %7.2f %8.2f %9.1f\n", label.c_str(),
                mean(rows, "step_time_s") * 1e3, Percentile(values(rows, "step_time_s"), 99) * 1e3,
                mean(rows, "dispatch_s") * 1e3, mean(rows, "expert_s") * 1e3,
                mean(rows, "combine_s") * 1e3, *std::max_element(stall.begin(), stall.end()) * 1e3,
                mean(rows, "token_skew"), assignments > 0 ? 100 * dropped / assignments : 0.0,
                mean(rows, "dispatch_GBps_per_gpu"));
  }
  return status;
}

}  // namespace epsim
