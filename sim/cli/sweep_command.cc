// epsim cli: `epsim sweep` (see commands.h).
#include <cstdio>
#include <string>

#include "common/command_line.h"
#include "common/error.h"
#include "sim/cli/commands.h"
#include "sim/config/data_files.h"
#include "sim/sweep/sweep_runner.h"
#include "sim/sweep/sweep_spec.h"

namespace epsim {
namespace {

void PrintUsage() {
  std::printf(
      "usage: epsim sweep SWEEP.yaml --out DIR [--jobs N] [--dry-run]\n"
      "\n"
      "Runs every point of the sweep file's grid as `epsim simulate BASE --flag value ...\n"
      "--out DIR/runs/<run-id>` in parallel processes and writes DIR/sweep.csv, one row\n"
      "per (run, step). Runs already complete in DIR are skipped (resume). Under\n"
      "`mpirun -np N` each rank takes runs i with i mod N == rank; rank 0 writes sweep.csv.\n"
      "\n"
      "  --out DIR    results folder (required)\n"
      "  --jobs N     parallel runs per process (default: cores / local ranks)\n"
      "  --dry-run    list the runs and their arguments, run nothing\n"
      "\n"
      "sweep file:\n"
      "  base: default                  # scenario name, path, or none\n"
      "  set: {tokens_per_gpu: 512}     # fixed fields (optional)\n"
      "  grid:\n"
      "    workload.routing: [uniform, zipf:0.5, zipf:1.0]\n"
      "    capacity_factor: [1.0, 1.25, none]\n"
      "    gpus: {from: 16, to: 64, step: 16}      # or {from: 8, to: 64, times: 2}\n"
      "    \"topology, nodes\": [[dgx-h100, 8], [gb200-nvl72, 18]]   # linked fields\n");
}

int Sweep(int argc, char** argv) {
  FlagSpec flags;
  flags.with_value = {"--out", "--jobs"};
  flags.switches = {"--dry-run"};
  flags.help_hint = "epsim sweep --help";
  flags.max_positionals = 1;
  flags.positional_name = "one sweep file";
  const CommandLine line = ParseCommandLine(argc, argv, 2, flags);
  if (line.help) {
    PrintUsage();
    return kExitOk;
  }
  SweepOptions options;
  options.dry_run = line.Has("--dry-run");
  options.out_dir = line.Get("--out");
  if (line.Has("--jobs")) options.jobs = static_cast<int>(FlagInt("--jobs", line.Get("--jobs"), 1, 4096));
  if (line.positionals.empty())
    throw ConfigError(kCommandLine, "", "", "missing the sweep file (epsim sweep SWEEP.yaml --out DIR)");
  if (options.out_dir.empty() && !options.dry_run)
    throw ConfigError(kCommandLine, "--out", "", "missing (epsim sweep SWEEP.yaml --out DIR)");
  options.title = line.positionals[0];
  return RunSweep(LoadSweepFile(line.positionals[0]), options, &RunSimulateCommand);
}

}  // namespace

int RunSweepCommand(int argc, char** argv) {
  // Every MPI rank checks the same input: only rank 0 says what is wrong with it.
  const bool leader = IsLeaderRank();
  return RunReportingErrors("epsim sweep", [&] {
    try {
      return Sweep(argc, argv);
    } catch (const ConfigError&) {
      if (leader) throw;
      return static_cast<int>(kExitBadInput);
    }
  }, DisplayPath);
}

}  // namespace epsim
