#!/bin/bash
# epsim tests: --trace writes a valid Trace Event Format file with one track per GPU, for
# both engines, and a broken trace is caught by the checker.
set -euo pipefail
out="${TEST_TMPDIR:-/tmp}"
for engine in simgrid analytic; do
  sim/epsim --gpus 16 --nodes 2 --tokens-per-gpu 128 --experts 32 --top-k 4 --hidden 1024 \
    --expert-ffn 512 --steps 2 --routing zipf:1.0 --engine "$engine" --trace "$out/$engine.json" > /dev/null
  /usr/bin/python3 tests/sim/check_trace.py "$out/$engine.json" 16
  grep -q '"name":"wait"' "$out/$engine.json"
  grep -q '"name":"call costs"' "$out/$engine.json"  # nccl's costs before each call's first flow
  grep -q '"dst_gpu"' "$out/$engine.json"
done
# Two-batch overlap: compute on each GPU's track, its all-to-alls on a second one.
sim/epsim --gpus 16 --nodes 2 --tokens-per-gpu 128 --experts 32 --top-k 4 --hidden 1024 \
  --expert-ffn 512 --steps 2 --overlap two-batch --engine simgrid --trace "$out/overlap.json" > /dev/null
/usr/bin/python3 tests/sim/check_trace.py "$out/overlap.json" 32
grep -q '"name":"gpu 15 comm"' "$out/overlap.json"
grep -q '"name":"dispatch 1"' "$out/overlap.json"
grep -q '"name":"expert 0"' "$out/overlap.json"
# An overlapped rebalance: its weights on the communication track while the experts compute.
sim/epsim --gpus 16 --nodes 2 --tokens-per-gpu 64 --experts 32 --top-k 4 --hidden 1024 \
  --expert-ffn 512 --steps 2 --routing zipf:1.0 --placement eplb --redundant-experts 16 --rebalance-interval 1 \
  --rebalance-cost overlapped --engine analytic --trace "$out/weights.json" > /dev/null
/usr/bin/python3 tests/sim/check_trace.py "$out/weights.json"
grep -q '"name":"expert weights"' "$out/weights.json"
grep -q '"cat":"expert weights"' "$out/weights.json"
# A trace inside a results folder that does not exist yet.
sim/epsim --gpus 16 --nodes 2 --tokens-per-gpu 64 --experts 32 --top-k 4 --hidden 1024 \
  --expert-ffn 512 --engine analytic --out "$out/new/run" --trace "$out/new/run/trace.json" > /dev/null
/usr/bin/python3 tests/sim/check_trace.py "$out/new/run/trace.json" 16
test -s "$out/new/run/summary.json"
# The checker must reject a slice that overlaps its parent without nesting.
cat > "$out/bad.json" <<'JSON'
{"traceEvents":[{"name":"thread_name","ph":"M","pid":0,"tid":0,"args":{"name":"gpu 0"}},
{"name":"a","ph":"X","pid":0,"tid":0,"ts":0,"dur":10},
{"name":"b","ph":"X","pid":0,"tid":0,"ts":5,"dur":10}]}
JSON
if /usr/bin/python3 tests/sim/check_trace.py "$out/bad.json" > /dev/null; then
  echo "checker accepted an overlapping slice"; exit 1
fi
echo "1 passed, 0 failed"
