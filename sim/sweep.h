// epsim: parameter sweeps, `epsim sweep SWEEP.yaml --out DIR`.
//
//   epsim sweep sweep.yaml --out results/sweep              # all cores, one run per process
//   epsim sweep sweep.yaml --out results/sweep --jobs 4 --dry-run
//   mpirun -np 4 epsim sweep sweep.yaml --out /shared/results/sweep   # split across ranks
//
// A sweep file names a base scenario and a grid; the grid's cartesian product gives the
// runs. Each run is a child process of the same binary (`epsim simulate BASE --flag value
// ... --out DIR/runs/<run-id>`): SimGrid keeps one engine per process. The sweep writes
//
//   DIR/runs/<run-id>/   the run's summary.json, steps.csv, gpus.csv, experts.csv, epsim.log
//                        and sweep_args.txt (the arguments that made it)
//   DIR/sweep.csv        one row per (run, step): run, the swept fields (one column each,
//                        named by the key's last part: routing, capacity_factor, gpus, ...),
//                        then every column of that run's steps.csv
//   DIR/sweep.yaml       a copy of the sweep file
//
// A run whose folder already holds summary.json (written atomically, so complete) made by
// the same arguments is skipped: an interrupted sweep resumes where it stopped.
//
// Sweep file:
//
//   base: default                       # bundled scenario name, a path, or `none`
//   set:                                # optional: fields fixed for every run
//     workload.tokens_per_gpu: 512
//     --steps: 2
//   grid:                               # each key an axis; runs = product of the axes
//     workload.routing: [uniform, zipf:0.5, zipf:1.0]
//     strategy.capacity_factor: [1.0, 1.25, none]
//     gpus: {from: 16, to: 64, step: 16}          # 16 32 48 64 (inclusive)
//     tokens_per_gpu: {from: 128, to: 1024, times: 2}   # 128 256 512 1024
//     seed: {values: [1, 2, 3]}
//     "topology, nodes": [[dgx-h100, 8], [gb200-nvl72, 18]]   # linked fields: one axis
//
// Keys are scenario keys (workload.routing), flags (--routing, routing) or a key's last
// part (tokens_per_gpu). Errors name the sweep file, the key and the value.
//
// Distributed: under `mpirun -np N` (OMPI_COMM_WORLD_SIZE / _RANK, or PMI_SIZE / PMI_RANK
// in the environment; MPI itself is not linked) rank r runs the grid's runs i with
// i mod N == r, and rank 0 waits for every run's summary.json (or its `failed` marker)
// before writing sweep.csv. The ranks must share DIR (one machine or a shared file system).
#ifndef EPSIM_SIM_SWEEP_H_
#define EPSIM_SIM_SWEEP_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace epsim {

// One scenario field that a sweep sets.
struct SweepField {
  std::string key;     // dotted scenario key, e.g. "workload.routing"
  std::string flag;    // its flag, e.g. "--routing"
  std::string column;  // its column in sweep.csv: the key's last part, e.g. "routing"
  std::string written; // the key as the sweep file wrote it (for errors)
};

// One axis of the grid: one field, or several linked fields that vary together.
struct SweepAxis {
  std::string written;                         // the grid key as written
  std::vector<SweepField> fields;
  std::vector<std::vector<std::string>> values;  // values[i][f]: i-th point, field f
};

struct SweepSpec {
  std::string file;        // the sweep file ("" when parsed from text)
  std::string base;        // base scenario as written: name, path, or "none"
  std::vector<std::pair<SweepField, std::string>> fixed;  // `set:` entries
  std::vector<SweepAxis> axes;                            // `grid:` entries, in file order

  // Runs in the grid: the product of the axis sizes (1 for an empty grid).
  int64_t NumRuns() const;
  // The swept fields' columns, in axis order.
  std::vector<std::string> Columns() const;
};

// One run of the grid.
struct SweepRun {
  int64_t index = 0;                  // position in the grid (last axis varies fastest)
  std::string id;                     // folder name under DIR/runs/
  std::vector<std::string> values;    // one per SweepSpec::Columns()
  // Flags for `epsim simulate`: the fixed fields, then the swept ones.
  std::vector<std::pair<std::string, std::string>> overrides;
};

// Parses a sweep file / sweep text. Throws ConfigError naming the file, key and value.
SweepSpec LoadSweepFile(const std::string& path);
SweepSpec ParseSweepText(const std::string& text, const std::string& name);

// Expands the grid into runs, in grid order (row-major: the last axis varies fastest).
// Run ids are built from the swept values ("routing=zipf-0.5_capacity_factor=1.25"), so a
// run keeps its folder when the grid grows; "base" when nothing is swept.
std::vector<SweepRun> ExpandSweep(const SweepSpec& spec);

// The text stored in DIR/runs/<id>/sweep_args.txt: the base as written and the overrides.
std::string SweepRunArgs(const SweepSpec& spec, const SweepRun& run);

// True when `run_dir` holds summary.json and (when present) sweep_args.txt equals `args`.
bool SweepRunComplete(const std::string& run_dir, const std::string& args);

// Builds sweep.csv from DIR/runs/<id>/steps.csv of the runs that completed. Runs without
// results are left out and listed in `missing` (may be null). Throws std::runtime_error when
// two runs' steps.csv headers differ.
std::string GatherSweepCsv(const SweepSpec& spec, const std::vector<SweepRun>& runs,
                           const std::string& out_dir, std::vector<std::string>* missing);

// The `epsim simulate` entry point (argv[1] is "simulate"); returns the exit status.
using SimulateFn = int (*)(int argc, char** argv);

// `epsim sweep ...`: argv[1] is "sweep". Returns the exit status: 0 when every run
// completed, 1 when some failed (sweep.csv then holds the others), 2 on bad input.
// With `simulate`, each run's child process calls it after fork() instead of executing
// the binary again (saves the dynamic loading, about a third of a small run).
int RunSweepCommand(int argc, char** argv, SimulateFn simulate = nullptr);

}  // namespace epsim

#endif  // EPSIM_SIM_SWEEP_H_
