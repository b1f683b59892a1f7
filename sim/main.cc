// epsim: what-if simulation of Mixture-of-Experts expert parallelism on GPU clusters.
//
//   epsim                                        # the bundled default scenario
//   epsim simulate scenarios/default.yaml --routing zipf:1.2 --out results/zipf12
//   epsim sweep scenarios/sweeps/capacity.yaml --out results/capacity      (see sim/sweep.h)
//   epsim compare default --vary a2a=direct,hierarchical --vary capacity-factor=1.0,none
//   epsim fabric-check --profile my-box.yaml --topology h800-ib                (see sim/fabric_check.h)
//
// Run `epsim --help` for every flag. Exit status: 0 on success, 2 on bad input, 1 on a
// failure while running.
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sim/compare.h"
#include "sim/config.h"
#include "sim/data_files.h"
#include "sim/fabric_check.h"
#include "sim/output_file.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "sim/simulation.h"
#include "sim/sweep.h"

namespace {

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "usage: epsim [simulate] [SCENARIO.yaml|NAME] [--flag VALUE ...] [--out DIR]\n"
               "       epsim sweep SWEEP.yaml --out DIR [--jobs N]   (epsim sweep --help)\n"
               "       epsim compare [SCENARIO] --vary FLAG=V1,V2 ... (epsim compare --help)\n"
               "       epsim fabric-check --profile PROFILE --topology TOPOLOGY (measured all-to-all vs the fabric)\n"
               "\n"
               "Replays expert-parallel MoE steps on a SimGrid model of a GPU cluster and prints\n"
               "step time, stalls, skew, dropped tokens and all-to-all bandwidth.\n"
               "With no scenario, runs the bundled scenarios/default.yaml.\n"
               "\n"
               "flags (each overrides the scenario field in brackets):\n");
  for (const auto& [flag, key] : epsim::ScenarioFlags())
    std::fprintf(out, "  %-20s [%s]\n", flag.c_str(), key.c_str());
  std::fprintf(out,
               "  %-20s write summary.json, steps.csv, gpus.csv, experts.csv there\n"
               "  %-20s write a Chrome/Perfetto timeline (JSON)\n"
               "  %-20s this text\n"
               "\n"
               "values: --routing uniform|zipf:S|hot:SHARE|trace:FILE, --capacity-factor CF|none,\n"
               "        --dispatch-dtype bf16|fp8, --topology NAME|FILE, --profile NAME|FILE,\n"
               "        --a2a direct|hierarchical|rdma-only, --placement contiguous|round-robin|eplb|\n"
               "        eplb-hierarchical, --burst none|EVERY:SHARE, --overlap none|two-batch,\n"
               "        --engine simgrid|analytic (details: scenarios/README.md)\n",
               "--out DIR", "--trace FILE", "--help");
}

struct Command {
  std::string scenario;
  std::string out_dir;
  std::string trace_path;
  std::vector<std::pair<std::string, std::string>> overrides;
};

// Parses argv; throws ConfigError("command line", flag, value, why) on a bad flag.
Command ParseArgs(int argc, char** argv) {
  Command cmd;
  int i = 1;
  if (i < argc && std::strcmp(argv[i], "simulate") == 0) ++i;
  bool have_scenario = false;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0) {
      std::string flag = arg, value;
      auto eq = arg.find('=');
      if (eq != std::string::npos) {
        flag = arg.substr(0, eq);
        value = arg.substr(eq + 1);
      } else {
        if (i + 1 >= argc) throw epsim::ConfigError("command line", flag, "", "missing value");
        value = argv[++i];
      }
      if (flag == "--out") {
        if (value.empty()) throw epsim::ConfigError("command line", flag, value, "empty folder name");
        cmd.out_dir = value;
        continue;
      }
      if (flag == "--trace") {
        if (value.empty()) throw epsim::ConfigError("command line", flag, value, "empty file name");
        cmd.trace_path = value;
        continue;
      }
      bool known = false;
      for (const auto& entry : epsim::ScenarioFlags()) known |= entry.first == flag;
      if (!known) throw epsim::ConfigError("command line", flag, value, "unknown flag (see epsim --help)");
      cmd.overrides.emplace_back(flag, value);
    } else if (!have_scenario) {
      cmd.scenario = arg;
      have_scenario = true;
    } else {
      throw epsim::ConfigError("command line", "", arg, "unexpected argument (one scenario at most)");
    }
  }
  if (!have_scenario) cmd.scenario = "default";
  return cmd;
}

// `epsim [simulate] ...`: one run. Also what each run of a sweep calls in its child process.
int Simulate(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      PrintUsage(stdout);
      return 0;
    }
  }
  epsim::SimulationInputs inputs;
  Command cmd;
  try {
    cmd = ParseArgs(argc, argv);
    std::string path = cmd.scenario == "none"
                           ? ""
                           : epsim::ResolveDataFile("scenarios", cmd.scenario, "command line",
                                                    "scenario");
    inputs = epsim::ResolveInputs(epsim::LoadScenario(path, cmd.overrides));
    // Output folders are checked before the run, not after it.
    auto make_folder = [](const std::string& flag, const std::string& value, const std::string& dir) {
      try {
        epsim::MakeDirectories(dir);
      } catch (const std::runtime_error& e) {
        throw epsim::ConfigError("command line", flag, value, e.what());
      }
    };
    if (!cmd.out_dir.empty()) make_folder("--out", cmd.out_dir, cmd.out_dir);
    const auto slash = cmd.trace_path.rfind('/');
    if (slash != std::string::npos && slash > 0)
      make_folder("--trace", cmd.trace_path, cmd.trace_path.substr(0, slash));
  } catch (const epsim::ConfigError& e) {
    std::fprintf(stderr, "epsim: error: %s\n", epsim::DisplayPath(e.what()).c_str());
    return 2;
  }
  try {
    std::unique_ptr<epsim::TraceWriter> trace;
    if (!cmd.trace_path.empty())
      trace = std::make_unique<epsim::TraceWriter>(inputs.topology, inputs.scenario.gpus);
    epsim::SimulationResult result = epsim::RunSimulation(inputs, trace.get());
    std::fputs(epsim::FormatReport(inputs, result).c_str(), stdout);
    if (!cmd.out_dir.empty()) {
      epsim::WriteResults(cmd.out_dir, inputs, result);
      std::printf("# results in %s/: summary.json steps.csv gpus.csv experts.csv\n",
                  cmd.out_dir.c_str());
    }
    if (trace) {
      epsim::WriteFileAtomically(cmd.trace_path, trace->Json());
      std::printf("# trace in %s (open in ui.perfetto.dev or chrome://tracing)\n",
                  cmd.trace_path.c_str());
    }
  } catch (const epsim::ConfigError& e) {
    std::fprintf(stderr, "epsim: error: %s\n", epsim::DisplayPath(e.what()).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "epsim: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "sweep") == 0) return epsim::RunSweepCommand(argc, argv, &Simulate);
  if (argc >= 2 && std::strcmp(argv[1], "compare") == 0) return epsim::RunCompareCommand(argc, argv, &Simulate);
  if (argc >= 2 && std::strcmp(argv[1], "fabric-check") == 0) return epsim::RunFabricCheckCommand(argc, argv);
  return Simulate(argc, argv);
}
