#!/usr/bin/env bash
# Runs a fixed set of scenarios through the built epsim and prints the sha256 of every
# result file and report, one line per file: a restructuring must leave every line as it was.
#   tools/output_hashes.sh [EPSIM_BINARY] > before.txt     (default bazel-bin/sim/epsim)
#   ... change the code, rebuild ...
#   tools/output_hashes.sh > after.txt && diff before.txt after.txt
# Covers both engines, direct / hierarchical / rdma-only all-to-alls, EPLB (flat and
# hierarchical, node limit), two-batch overlap, tensor parallelism, routing traces, bursts,
# drift, token spread, drop by score, a sweep, a compare and fabric-check. About a minute.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
epsim="$(realpath "${1:-bazel-bin/sim/epsim}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() {  # NAME ARGS...: one simulate run with result files and a trace
  local name="$1"
  shift
  "$epsim" simulate "$@" --out "$work/$name" --trace "$work/$name/trace.json" > "$work/$name.report"
  for f in summary.json steps.csv gpus.csv experts.csv trace.json; do
    echo "$name/$f $(sha256sum < "$work/$name/$f" | cut -d' ' -f1)"
  done
  # The report names the result folder, which is a temporary one: leave those lines out.
  echo "$name/report $(grep -v '^# \(results\|trace\) in ' "$work/$name.report" | sha256sum | cut -d' ' -f1)"
}

run simgrid-direct default --steps 2
run simgrid-hier-eplbh default --steps 2 --a2a hierarchical --placement eplb-hierarchical \
  --redundant-experts 64 --node-limit 4 --rebalance-interval 1
run analytic-eplb-overlap default --steps 3 --engine analytic --a2a hierarchical --placement eplb \
  --redundant-experts 64 --overlap two-batch --capacity-factor none
run simgrid-overlap default --steps 2 --overlap two-batch --tokens-per-gpu 1024
run analytic-tp default --steps 2 --engine analytic --parallelism tp --capacity-factor none
run simgrid-tp default --steps 1 --parallelism tp --tokens-per-gpu 512
run analytic-rdma-score default --steps 2 --engine analytic --a2a rdma-only --drop-policy score \
  --routing hot:0.05 --burst 2:0.05 --drift-steps 1 --token-spread lognormal:0.3 --balance 0.2
run analytic-trace default --steps 3 --engine analytic --routing trace:tests/testdata/token_trace_tiny.csv \
  --experts 16 --top-k 2 --gpus 16 --nodes 2 --placement round-robin --shared-experts 0
run gb200 default --steps 2 --engine analytic --topology gb200-nvl72 --profile gb200 --gpus 64 --nodes 16

# A sweep and a compare (their tables, and every run's steps.csv through sweep.csv).
"$epsim" sweep scenarios/sweeps/capacity.yaml --out "$work/sweep" --jobs 2 > "$work/sweep.report" 2>/dev/null
echo "sweep/sweep.csv $(sha256sum < "$work/sweep/sweep.csv" | cut -d' ' -f1)"
"$epsim" compare default --vary a2a=direct,hierarchical --vary capacity-factor=1.0,none \
  --engine analytic --steps 2 --out "$work/compare" --jobs 2 > "$work/compare.report" 2>/dev/null
echo "compare/sweep.csv $(sha256sum < "$work/compare/sweep.csv" | cut -d' ' -f1)"
echo "compare/report $(grep -v "$work" "$work/compare.report" | sha256sum | cut -d' ' -f1)"

# fabric-check on the fuzz seed profile (a made-up NCCL measurement).
"$epsim" fabric-check --profile tests/fuzz/corpus/profile/measured_with_nccl_a2a.yaml --topology h800-ib \
  > "$work/fabric.report"
echo "fabric-check/report $(sed 's#(.*measured_with_nccl_a2a.yaml#(PROFILE#' "$work/fabric.report" | sha256sum | cut -d' ' -f1)"
