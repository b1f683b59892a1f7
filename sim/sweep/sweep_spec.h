// epsim sweep: grids of scenarios (sweep files), expanded into runs.
//
// A sweep file names a base scenario and a grid; the grid's cartesian product gives the
// runs. Each run is `epsim simulate BASE --flag value ...` with its own results folder
// (sweep_runner.h runs them):
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
#ifndef EPSIM_SIM_SWEEP_SWEEP_SPEC_H_
#define EPSIM_SIM_SWEEP_SWEEP_SPEC_H_

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

// The scenario field a grid or `set:` key names (a key, a flag, or a key's last part);
// ConfigError(file, section, written, why) when none.
SweepField ResolveSweepField(const std::string& written, const std::string& file, const std::string& section);

// Refuses a spec that sets a field twice (in `set:` and `grid:`, or in two axes), naming
// the second place.
void CheckFieldsSetOnce(const SweepSpec& spec);

// The spec as a sweep file (what DIR/sweep.yaml holds when no file was given: epsim compare).
std::string FormatSweepFile(const SweepSpec& spec);

}  // namespace epsim

#endif  // EPSIM_SIM_SWEEP_SWEEP_SPEC_H_
