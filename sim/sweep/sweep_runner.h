// epsim sweep: running a sweep's runs in parallel processes, across MPI ranks, with resume.
//
// Each run is a child process (fork) that calls the `epsim simulate` entry point with
// `simulate BASE --flag value ... --out DIR/runs/<run-id>`: SimGrid keeps one engine per
// process. The sweep writes
//
//   DIR/runs/<run-id>/   the run's summary.json, steps.csv, gpus.csv, experts.csv, epsim.log,
//                        sweep_args.txt (the arguments that made it) and sweep_build.txt (the
//                        epsim build that made it: BuildFingerprint)
//   DIR/sweep.csv        one row per (run, step): run, the swept fields (one column each,
//                        named by the key's last part: routing, capacity_factor, gpus, ...),
//                        then every column of that run's steps.csv
//   DIR/sweep.yaml       the sweep file (a copy, or the spec written out)
//
// A run whose folder already holds summary.json (written atomically, so complete) made by
// the same arguments and the same epsim build is skipped: an interrupted sweep resumes where
// it stopped, and a rebuilt epsim (other numbers, perhaps) runs everything again.
//
// Distributed: under `mpirun -np N` (OMPI_COMM_WORLD_SIZE / _RANK, or PMI_SIZE / PMI_RANK
// in the environment; MPI itself is not linked) rank r runs the grid's runs i with
// i mod N == r, and rank 0 waits for every run's summary.json (or its `failed` marker)
// before writing sweep.csv. The ranks must share DIR (one machine or a shared file system).
#ifndef EPSIM_SIM_SWEEP_SWEEP_RUNNER_H_
#define EPSIM_SIM_SWEEP_SWEEP_RUNNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sim/sweep/sweep_spec.h"

namespace epsim {

// The `epsim simulate` entry point (argv[1] is "simulate"); returns the exit status.
using SimulateFn = int (*)(int argc, char** argv);

struct SweepOptions {
  std::string out_dir;
  int jobs = 0;            // parallel runs per process; 0: cores / MPI ranks on this machine
  bool dry_run = false;    // list the runs and their arguments, run nothing
  std::string title;       // names the sweep in the first line printed (its file)
};

// False on the MPI ranks other than rank 0 (which report nothing, so that an error is
// printed once).
bool IsLeaderRank();

// The base scenario as a path for `epsim simulate` ("none" stays "none"). A relative path
// is tried as given, then beside the sweep file. ConfigError naming the sweep's `base`.
std::string ResolveSweepBase(const SweepSpec& spec);

// Checks every run's scenario (as ResolveInputs does) before anything runs; a bad value is
// a ConfigError naming the sweep file's key (set.X, grid.X) or, if no swept field caused
// it, the run.
void CheckSweepRuns(const SweepSpec& spec, const std::string& base_path, const std::vector<SweepRun>& runs);

// A 64-bit hash of this process's executable (hex), or "" when it cannot be read.
const std::string& BuildFingerprint();

// True when `run_dir` holds summary.json and, when sweep_args.txt is present (a run the
// sweep made), sweep_args.txt equals `args` and sweep_build.txt this build's fingerprint.
bool SweepRunComplete(const std::string& run_dir, const std::string& args);

// Builds sweep.csv from DIR/runs/<id>/steps.csv of the runs that completed. Runs without
// results are left out and listed in `missing` (may be null). Throws std::runtime_error when
// two runs' steps.csv headers differ.
std::string GatherSweepCsv(const SweepSpec& spec, const std::vector<SweepRun>& runs,
                           const std::string& out_dir, std::vector<std::string>* missing);

// Runs the sweep: checks every run, prints what it will do (stdout, leader rank only),
// runs this rank's share with a progress bar (stderr), and on rank 0 writes sweep.csv.
// Returns the exit status: 0 when every run completed, kExitRunFailed when some failed
// (sweep.csv then holds the others); bad input throws ConfigError.
int RunSweep(const SweepSpec& spec, const SweepOptions& options, SimulateFn simulate);

}  // namespace epsim

#endif  // EPSIM_SIM_SWEEP_SWEEP_RUNNER_H_
