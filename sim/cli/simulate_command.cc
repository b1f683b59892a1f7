// epsim cli: `epsim simulate` (see commands.h).
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/command_line.h"
#include "common/error.h"
#include "common/files.h"
#include "common/parallel.h"
#include "sim/cli/commands.h"
#include "sim/config/data_files.h"
#include "sim/config/inputs.h"
#include "sim/config/scenario.h"
#include "sim/report/report.h"
#include "sim/report/result_files.h"
#include "sim/report/trace.h"
#include "sim/simulation/simulation.h"

namespace epsim {
namespace {

void PrintUsage() {
  std::printf(
      "usage: epsim [simulate] [SCENARIO.yaml|NAME|none] [--flag VALUE ...] [--out DIR] [--trace FILE]\n"
      "       epsim sweep SWEEP.yaml --out DIR [--jobs N]   (epsim sweep --help)\n"
      "       epsim compare [SCENARIO] --vary FLAG=V1,V2 ... (epsim compare --help)\n"
      "       epsim fabric-check --profile PROFILE --topology TOPOLOGY (measured all-to-all vs the fabric)\n"
      "\n"
      "Replays expert-parallel MoE steps on a SimGrid model of a GPU cluster and prints\n"
      "step time, stalls, skew, dropped tokens and all-to-all bandwidth.\n"
      "With no scenario, runs the bundled scenarios/default.yaml; `none` takes every field\n"
      "from flags. Flags take `--flag value` or `--flag=value`.\n"
      "\n"
      "flags (each overrides the scenario field in brackets; details: scenarios/README.md):\n");
  for (const ScenarioField& f : ScenarioSchema()) {
    const std::string flag = std::string(f.flag) + " " + f.values;
    const std::string field = f.fallback == nullptr ? std::string(f.key) + ", required"
                              : *f.fallback == '\0'   ? std::string(f.key)
                                                      : std::string(f.key) + ", default " + f.fallback;
    std::printf("  %-44s [%s]\n", flag.c_str(), field.c_str());
  }
  std::printf("  %-44s write summary.json, steps.csv, gpus.csv, experts.csv, links.csv there\n"
              "  %-44s write a Chrome/Perfetto timeline (JSON)\n"
              "  %-44s worker threads (default: every core); the results are the same for any N\n"
              "  %-44s this text\n"
              "\n"
              "exit status: 0 done, 1 the run failed, 2 bad input\n",
              "--out DIR", "--trace FILE", "--threads N", "--help");
}

FlagSpec SimulateFlags() {
  FlagSpec spec;
  // A scenario flag given twice: the later one wins (as flags after a scenario file do).
  for (const auto& [flag, key] : ScenarioFlags()) {
    spec.with_value.insert(flag);
    spec.repeatable.insert(flag);
  }
  spec.with_value.insert({"--out", "--trace", "--threads"});
  spec.help_hint = "epsim --help";
  spec.max_positionals = 1;
  spec.positional_name = "one scenario";
  return spec;
}

// Creates `dir` for `flag`'s value now, so that a bad folder stops the run before it starts.
void MakeFolderFor(const std::string& flag, const std::string& value, const std::string& dir) {
  try {
    MakeDirectories(dir);
  } catch (const std::runtime_error& e) {
    throw ConfigError(kCommandLine, flag, value, e.what());
  }
}

int Simulate(int argc, char** argv) {
  const int first = argc > 1 && std::string(argv[1]) == "simulate" ? 2 : 1;
  const CommandLine line = ParseCommandLine(argc, argv, first, SimulateFlags());
  if (line.help) {
    PrintUsage();
    return kExitOk;
  }
  std::vector<std::pair<std::string, std::string>> overrides;
  for (const auto& entry : line.flags)
    if (entry.first != "--out" && entry.first != "--trace" && entry.first != "--threads") overrides.push_back(entry);
  if (line.Has("--threads")) SetWorkerThreads(static_cast<int>(FlagInt("--threads", line.Get("--threads"), 1, 1024)));
  const std::string scenario = line.positionals.empty() ? "default" : line.positionals[0];
  const std::string path = scenario == "none" ? "" : ResolveDataFile("scenarios", scenario, kCommandLine, "scenario");
  const SimulationInputs inputs = ResolveInputs(LoadScenario(path, overrides));
  const std::string out_dir = line.Get("--out"), trace_path = line.Get("--trace");
  if (!out_dir.empty()) MakeFolderFor("--out", out_dir, out_dir);
  const size_t slash = trace_path.rfind('/');
  if (slash != std::string::npos && slash > 0) MakeFolderFor("--trace", trace_path, trace_path.substr(0, slash));

  std::unique_ptr<TraceWriter> trace;
  if (!trace_path.empty()) trace = std::make_unique<TraceWriter>(inputs.topology, inputs.scenario.gpus, inputs.scenario.layers);
  const SimulationResult result = RunSimulation(inputs, trace.get());
  std::fputs(FormatReport(inputs, result).c_str(), stdout);
  if (!out_dir.empty()) {
    WriteResults(out_dir, inputs, result);
    std::printf("# results in %s/: summary.json steps.csv gpus.csv experts.csv links.csv\n", out_dir.c_str());
  }
  if (trace) {
    WriteFileAtomically(trace_path, trace->Json());
    std::printf("# trace in %s (open in ui.perfetto.dev or chrome://tracing)\n", trace_path.c_str());
  }
  return kExitOk;
}

}  // namespace

int RunSimulateCommand(int argc, char** argv) {
  return RunReportingErrors("epsim", [&] { return Simulate(argc, argv); }, DisplayPath);
}

}  // namespace epsim
