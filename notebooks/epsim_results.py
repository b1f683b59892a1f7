"""epsim results in pandas: run the simulator from a notebook, load what it wrote.

    import epsim_results as er
    run = er.simulate("zipf1", "default", "--routing", "zipf:1.0", "--engine", "analytic")
    run.summary["step_time_s"], run.steps, run.gpus          # summary.json, steps.csv, gpus.csv
    run.links                 # links.csv: per (step, link) bytes, load, busy time, peak flows
    sw = er.sweep("skew", base="default", set={"engine": "analytic"},
                  grid={"workload.routing": ["uniform", "zipf:0.5", "zipf:1.0"]})
    sw.steps                  # sweep.csv: one row per (run, step), swept fields as columns
    sw.runs                   # one row per run: swept fields + summary.json, flattened
    sw.gpus(routing="zipf:1.0")   # gpus.csv of the matching runs, swept fields added

Where things are (environment variables override):
- EPSIM_BIN: the epsim binary; default bazel-bin/sim/epsim under the repository root
  (build it with `bazel build //sim:epsim`).
- EPSIM_RESULTS: the folder for cached runs; default results/notebooks under the repository
  root (git-ignored). A run or sweep made with the same arguments is reused, not rerun.
- EPSIM_FIGURES: where save_figure() writes PNGs; default docs/figures.

Units: times in seconds in the files (notebooks convert to ms), bandwidth in GB/s (1e9 B/s).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

__all__ = [
    "repo_root", "epsim_bin", "results_root", "figures_dir", "simulate", "sweep",
    "load_run", "load_sweep", "save_figure", "Run", "Sweep", "capacity_value",
]


def repo_root():
    """The repository root: the folder above notebooks/."""
    # absolute(), not resolve(): under Bazel runfiles this file is a symlink into the source
    # tree, and the data files the notebooks read sit beside the symlink.
    return Path(__file__).absolute().parent.parent


def _env_path(name, default):
    value = os.environ.get(name)
    return Path(value) if value else default


def epsim_bin():
    """Path of the epsim binary (EPSIM_BIN, else bazel-bin/sim/epsim); raises if missing."""
    path = _env_path("EPSIM_BIN", repo_root() / "bazel-bin" / "sim" / "epsim")
    if not path.exists():
        raise FileNotFoundError(
            f"epsim binary not found at {path}: build it with `bazel build //sim:epsim` "
            "or set EPSIM_BIN")
    return path


def results_root():
    """Folder holding cached runs and sweeps (EPSIM_RESULTS, else results/notebooks)."""
    return _env_path("EPSIM_RESULTS", repo_root() / "results" / "notebooks")


def figures_dir():
    """Folder for figures (EPSIM_FIGURES, else docs/figures); created when missing."""
    path = _env_path("EPSIM_FIGURES", repo_root() / "docs" / "figures")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, name, dpi=120):
    """Writes `fig` as figures_dir()/NAME.png and returns the path."""
    path = figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def capacity_value(text):
    """A capacity_factor value as a number: 'none' (dropless) becomes infinity."""
    text = str(text)
    return float("inf") if text in ("none", "dropless") else float(text)


def _flatten(prefix, value, out):
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}{key}.", item, out)
    else:
        out[prefix[:-1]] = value


# summary.json keys -> flat column names, matching steps.csv where the meaning is the same.
_SUMMARY_RENAMES = {
    "phases_s.route": "route_s", "phases_s.dispatch": "dispatch_s",
    "phases_s.expert": "expert_s", "phases_s.combine": "combine_s",
    "stall_s.min": "stall_min_s", "stall_s.median": "stall_median_s", "stall_s.max": "stall_max_s",
    "a2a_GBps_per_gpu.dispatch": "dispatch_GBps_per_gpu",
    "a2a_GBps_per_gpu.combine": "combine_GBps_per_gpu",
}


def _flat_summary(summary):
    flat = {}
    _flatten("", summary, flat)
    return {_SUMMARY_RENAMES.get(k, k): v for k, v in flat.items()}


class Run:
    """One result folder (epsim simulate --out DIR): summary.json and the tidy CSVs."""

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "summary.json").exists():
            raise FileNotFoundError(f"{self.path}: no summary.json (not an epsim result folder)")
        self._frames = {}

    def __repr__(self):
        return f"Run({str(self.path)!r})"

    @property
    def summary(self):
        """summary.json as a dict (the resolved scenario under 'scenario')."""
        if "summary" not in self._frames:
            self._frames["summary"] = json.loads((self.path / "summary.json").read_text())
        return self._frames["summary"]

    @property
    def flat_summary(self):
        """summary.json flattened: phases_s.route -> route_s, stall_s.max -> stall_max_s, ..."""
        return _flat_summary(self.summary)

    def _csv(self, name):
        if name not in self._frames:
            self._frames[name] = pd.read_csv(self.path / f"{name}.csv")
        return self._frames[name]

    @property
    def steps(self):
        """steps.csv: one row per step."""
        return self._csv("steps")

    @property
    def gpus(self):
        """gpus.csv: one row per (step, GPU)."""
        return self._csv("gpus")

    @property
    def experts(self):
        """experts.csv: one row per (step, expert)."""
        return self._csv("experts")

    @property
    def links(self):
        """links.csv: one row per (step, link that carried bytes), with its tier."""
        return self._csv("links")


def load_run(path):
    """Loads a result folder written by `epsim simulate ... --out DIR`."""
    return Run(path)


class Sweep:
    """A sweep folder (epsim sweep ... --out DIR): sweep.csv plus runs/<id>/."""

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "sweep.csv").exists():
            raise FileNotFoundError(f"{self.path}: no sweep.csv (not an epsim sweep folder)")
        self.steps = pd.read_csv(self.path / "sweep.csv")
        header = (self.path / "sweep.csv").read_text().split("\n", 1)[0].split(",")
        # Swept fields: the columns between `run` and steps.csv's `step`.
        self.columns = header[1:header.index("step")]
        self._runs = None

    def __repr__(self):
        return f"Sweep({str(self.path)!r}, {len(self.run_ids())} runs, columns {self.columns})"

    def run_ids(self):
        return list(dict.fromkeys(self.steps["run"]))

    def run(self, run_id):
        """The Run of one run id (a value of the `run` column)."""
        return Run(self.path / "runs" / run_id)

    @property
    def runs(self):
        """One row per run: the swept fields, then summary.json flattened."""
        if self._runs is None:
            first = self.steps.drop_duplicates("run")[["run"] + self.columns]
            rows = []
            for run_id in first["run"]:
                flat = self.run(run_id).flat_summary
                flat["run"] = run_id
                rows.append(flat)
            self._runs = first.merge(pd.DataFrame(rows), on="run").reset_index(drop=True)
        return self._runs

    def select(self, **fields):
        """Run ids whose swept fields equal the given values (compared as text)."""
        firsts = self.steps.drop_duplicates("run")
        mask = pd.Series(True, index=firsts.index)
        for key, value in fields.items():
            mask &= firsts[key].astype(str) == str(value)
        return list(firsts.loc[mask, "run"])

    def gpus(self, **fields):
        """gpus.csv of the runs matching `fields` (all runs when none), swept fields added."""
        return self._per_run("gpus", fields)

    def links(self, **fields):
        """links.csv of the runs matching `fields` (all runs when none), swept fields added."""
        return self._per_run("links", fields)

    def _per_run(self, table, fields):
        frames = []
        firsts = self.steps.drop_duplicates("run").set_index("run")
        for run_id in self.select(**fields):
            frame = getattr(self.run(run_id), table).copy()
            frame.insert(0, "run", run_id)
            for i, column in enumerate(self.columns):
                frame.insert(1 + i, column, firsts.loc[run_id, column])
            frames.append(frame)
        if not frames:
            raise KeyError(f"no run in {self.path} matches {fields}")
        return pd.concat(frames, ignore_index=True)


def load_sweep(path):
    """Loads a sweep folder written by `epsim sweep SWEEP.yaml --out DIR`."""
    return Sweep(path)


def _run_epsim(args, quiet=True):
    started = time.time()
    proc = subprocess.run([str(epsim_bin())] + [str(a) for a in args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-5:]
        raise RuntimeError(f"epsim {' '.join(map(str, args))} failed "
                           f"(exit {proc.returncode}):\n" + "\n".join(tail))
    return proc, time.time() - started


def simulate(name, *args, fresh=False):
    """Runs `epsim simulate ARGS --out RESULTS/NAME`, or reuses a complete earlier run with the
    same arguments. Returns the Run."""
    out = results_root() / name
    stamp = "\n".join(map(str, args)) + "\n"
    args_file = out / "notebook_args.txt"
    if (not fresh and (out / "summary.json").exists() and (out / "links.csv").exists()
            and args_file.exists() and args_file.read_text() == stamp):
        return Run(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", "notebook_args.txt"):
        (out / stale).unlink(missing_ok=True)
    _, wall = _run_epsim(["simulate", *args, "--out", out])
    args_file.write_text(stamp)
    print(f"epsim simulate {' '.join(map(str, args))}: {wall:.1f} s")
    return Run(out)


def sweep(name, base, grid=None, set=None, jobs=None):  # noqa: A002 (matches the file's key)
    """Writes RESULTS/NAME/sweep.yaml and runs `epsim sweep` on it. Runs already complete with
    the same arguments are reused (epsim resumes). Returns the Sweep."""
    import yaml  # python3-yaml; imported here so that loading results does not need it

    out = results_root() / name
    out.mkdir(parents=True, exist_ok=True)
    spec = {"base": base}
    if set:
        spec["set"] = dict(set)
    if grid:
        spec["grid"] = dict(grid)
    text = "# written by notebooks/epsim_results.py\n" + yaml.safe_dump(spec, sort_keys=False)
    sweep_file = out / "sweep.yaml"
    sweep_file.write_text(text)
    args = ["sweep", sweep_file, "--out", out]
    if jobs:
        args += ["--jobs", jobs]
    proc, wall = _run_epsim(args)
    last = [line for line in proc.stdout.splitlines() if line.startswith("# ")][-1:]
    print(f"epsim sweep {name}: {wall:.1f} s; " + (last[0][2:] if last else ""))
    return Sweep(out)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        p = Path(path)
        print(load_sweep(p) if (p / "sweep.csv").exists() else load_run(p).flat_summary)
