#!/usr/bin/env bash
# Scale ladder: CPU and wall time, peak memory and simulated step time of one EP step
# (dgx-h100-superpod: dgx-h100 up to 128 nodes, three tiers beyond; 4096 tokens per GPU,
# hidden 7168, top-8, 256 experts, fp8 dispatch), for uniform and Zipf 1.0 routing and the
# direct and hierarchical all-to-alls, with the analytic fast path at 64..32768 GPUs (its
# sharing chosen as users get it: exact max-min where predicted to take seconds) and the
# SimGrid replay (the reference: one mailbox
# put/get per flow, the plain replay a SimGrid user would write) at 64 and 128 GPUs, and at
# 256 and 512 GPUs for Zipf 1.0 with the direct all-to-all (the scale goal's case), stopped
# after SIMGRID_LIMITS_S seconds of wall time (one per size; default 2400 and 600): a run
# that does not finish is reported with the CPU it used, a lower bound. Against SimGrid the
# fast path runs with each sharing solver (max-min up to 256 GPUs). Writes BENCHMARKS.md
# at the repository root.
#   tools/bench/ladder.sh                          # everything (about an hour on 2 cores)
#   SIMGRID_LARGE= tools/bench/ladder.sh           # without the large references (10 minutes)
#   SIZES="64 256" SIMGRID_SIZES=64 SIMGRID_LARGE= tools/bench/ladder.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
tools/setup.sh
bazel build --ui_event_filters=-info,-debug --noshow_progress //sim:epsim //tests/bench:full_all_to_all >&2
bin="$(bazel info bazel-bin 2>/dev/null)/sim/epsim"
full_a2a="$(bazel info bazel-bin 2>/dev/null)/tests/bench/full_all_to_all"
sizes="${SIZES:-64 256 512 1024 4096 8192 32768}"
simgrid_sizes="${SIMGRID_SIZES-64 128}"
simgrid_large="${SIMGRID_LARGE-256 512}"
read -r -a simgrid_limits <<< "${SIMGRID_LIMITS_S:-2400 600}"
work="$(mktemp -d)"
common=(--tokens-per-gpu 4096 --hidden 7168 --expert-ffn 2048 --experts 256
        --shared-experts 1 --top-k 8 --dispatch-dtype fp8 --combine-dtype bf16
        --capacity-factor none --steps 1 --seed 1)

# run NAME ARGS...: one epsim run; appends "name cpu_s rss_MB step_ms wall_s" to $work/runs.
# With LIMIT_S set, a run still going after that many seconds of wall time is stopped and
# recorded as "name cpu_s_used - timeout LIMIT_S".
run() {
  local name="$1"; shift
  local status=0
  /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" timeout "${LIMIT_S:-0}" "$bin" "${common[@]}" "$@" --out "$work/$name" > /dev/null || status=$?
  if [ "$status" = 124 ]; then  # time's last line: the CPU the stopped run had used
    local stopped_cpu
    stopped_cpu=$(tail -n 1 "$work/$name.time" | awk '{printf "%.0f", $2 + $3}')
    echo "$name $stopped_cpu - timeout ${LIMIT_S}" >> "$work/runs"
    echo "$name: stopped after ${LIMIT_S} s wall, ${stopped_cpu} s CPU" >&2
    return
  fi
  [ "$status" = 0 ] || { echo "$name: epsim failed ($status)" >&2; exit 1; }
  local step_ms cpu
  step_ms=$(awk -F, 'NR==2 {printf "%.3f", $2 * 1e3}' "$work/$name/steps.csv")
  read -r wall user sys rss < "$work/$name.time"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')
  echo "$name $cpu $((rss / 1024)) $step_ms $wall" >> "$work/runs"
  echo "$name: ${cpu} s CPU (${wall} s wall), $((rss / 1024)) MB, step ${step_ms} ms" >&2
}

# Sweep throughput first, while nothing else runs: SWEEP_RUNS scenarios of 64 GPUs (512
# tokens, one step, analytic) through `epsim sweep` on all cores; wall time.
# With processor sharing (the fast setting) and with sharing auto (exact max-min at this
# size), a fifth as many runs.
sweep_runs="${SWEEP_RUNS:-1000}"
for sharing in processor-sharing auto; do
  runs_here=$sweep_runs
  [ "$sharing" = auto ] && runs_here=$(( (sweep_runs + 4) / 5 ))
  cat > "$work/sweep-$sharing.yaml" <<YAML
base: default
set: {workload.tokens_per_gpu: 512, workload.steps: 1, engine: analytic, sharing: $sharing}
grid:
  seed: {from: 1, to: $runs_here, step: 1}
YAML
  /usr/bin/time -f "%e %U %S %M" -o "$work/sweep-$sharing.time" "$bin" sweep "$work/sweep-$sharing.yaml" --out "$work/sweep-$sharing" > /dev/null 2>&1
  echo "sweep ($sharing): $runs_here runs: $(cat "$work/sweep-$sharing.time")" >&2
done

for n in $sizes; do
  for routing in uniform zipf:1.0; do
    for a2a in direct hierarchical; do
      run "analytic-$n-$routing-$a2a" --topology dgx-h100-superpod --gpus "$n" --nodes $((n / 8)) --routing "$routing" --a2a "$a2a" --engine analytic
    done
  done
done
for n in $simgrid_sizes; do
  for routing in uniform zipf:1.0; do
    for a2a in direct hierarchical; do
      run "simgrid-$n-$routing-$a2a" --topology dgx-h100-superpod --gpus "$n" --nodes $((n / 8)) --routing "$routing" --a2a "$a2a" --engine simgrid
      run "analytic-ref-$n-$routing-$a2a" --topology dgx-h100-superpod --gpus "$n" --nodes $((n / 8)) --routing "$routing" --a2a "$a2a" --engine analytic --sharing max-min
      run "analytic-ps-$n-$routing-$a2a" --topology dgx-h100-superpod --gpus "$n" --nodes $((n / 8)) --routing "$routing" --a2a "$a2a" --engine analytic --sharing processor-sharing
    done
  done
done
i=0
for n in $simgrid_large; do
  LIMIT_S="${simgrid_limits[$i]:-600}" run "simgrid-$n-zipf:1.0-direct" --topology dgx-h100-superpod --gpus "$n" --nodes $((n / 8)) --routing zipf:1.0 --a2a direct --engine simgrid
  [ "$n" -le 256 ] && run "analytic-ref-$n-zipf:1.0-direct" --topology dgx-h100-superpod --gpus "$n" --nodes $((n / 8)) --routing zipf:1.0 --a2a direct --engine analytic --sharing max-min
  run "analytic-ps-$n-zipf:1.0-direct" --topology dgx-h100-superpod --gpus "$n" --nodes $((n / 8)) --routing zipf:1.0 --a2a direct --engine analytic --sharing processor-sharing
  i=$((i + 1))
done
# The full all-to-all (every GPU to every other, 1 MiB per pair) on the fast path, with each
# sharing solver: the bench's own time for the fast path and the process's CPU and memory.
for sharing in processor-sharing max-min; do
  /usr/bin/time -f "%e %U %S %M" -o "$work/full-a2a-$sharing.time" "$full_a2a" topologies/dgx-h100-superpod.yaml 1024 1048576 "$sharing" > "$work/full-a2a-$sharing.out"
  cat "$work/full-a2a-$sharing.out" >&2
done
# Where processor sharing is an approximation: spine links binding together with NICs.
for routing in uniform zipf:1.0; do
  oversub=(--topology tools/bench/dgx-h100-oversub4.yaml --profile h100 --gpus 64 --nodes 8 --routing "$routing")
  run "simgrid-oversub-$routing" "${oversub[@]}" --engine simgrid
  run "analytic-ref-oversub-$routing" "${oversub[@]}" --engine analytic --sharing max-min
  run "analytic-ps-oversub-$routing" "${oversub[@]}" --engine analytic --sharing processor-sharing
done

/usr/bin/python3 - "$work" "$root/BENCHMARKS.md" "$sizes" "$simgrid_sizes" "$simgrid_large" <<'PY'
import csv, datetime, json, os, re, subprocess, sys
work, out, sizes, sg_sizes, sg_large = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split()
runs, walls = {}, {}
for line in open(os.path.join(work, "runs")):
    name, cpu, rss, step, wall = line.split()
    runs[name] = (float(cpu), rss, step)  # rss "-" and step "timeout" for a stopped run
    walls[name] = wall  # "LIMIT_S" for a stopped run

def per_gpu_error(a, b):
    ra = list(csv.DictReader(open(os.path.join(work, a, "gpus.csv"))))
    rb = list(csv.DictReader(open(os.path.join(work, b, "gpus.csv"))))
    worst = {"dispatch": 0.0, "combine": 0.0, "end": 0.0}
    for x, y in zip(ra, rb):
        dx = float(x["route_s"]) + float(x["dispatch_s"]); dy = float(y["route_s"]) + float(y["dispatch_s"])
        worst["dispatch"] = max(worst["dispatch"], abs(dy - dx) / dx)
        # combine completion = step end - the final reduce (compute_s = route + expert + reduce)
        reduce = lambda r: float(r["compute_s"]) - float(r["route_s"]) - float(r["expert_s"])
        cx = float(x["end_s"]) - reduce(x); cy = float(y["end_s"]) - reduce(y)
        worst["combine"] = max(worst["combine"], abs(cy - cx) / cx)
        ex, ey = float(x["end_s"]), float(y["end_s"])
        worst["end"] = max(worst["end"], abs(ey - ex) / ex)
    return worst

commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = ["# epsim benchmarks", "",
         "Written by `tools/bench/ladder.sh` (rerun: one command). One EP step: dgx-h100-superpod",
         "(dgx-h100's two-tier fabric up to 128 nodes, pods of 128 nodes under a core tier beyond:",
         "4096 GPUs are 4 pods, 32768 GPUs 32), 4096 tokens per GPU, hidden 7168, expert FFN 2048,",
         "256 experts + 1 shared, top-8, fp8 dispatch, bf16 combine, dropless. With more GPUs than",
         "experts, experts are replicated. The binary is the build `tools/epsim` runs (.bazelrc:",
         "fastbuild with -O2).", "",
         f"- machine: {cpu}, {os.cpu_count()} cores; date {datetime.date.today()}; commit {commit}",
         "- time = CPU time (user + system) of the whole `epsim` process (routing sampling included;",
         "  robust to other load on the machine), peak RSS, one run each. `epsim` runs the routing",
         f"  sampler and the fast path's per-link work on every core (`--threads`, here {os.cpu_count()}); the",
         "  fast path's table also gives the wall time, which is what a user waits", "",
         "## Analytic fast path", "",
         "`--engine analytic` as a user gets it: exact max-min sharing where it is predicted to take at",
         "most 10 s of CPU, per-link processor sharing beyond (the `sharing` column).", "",
         "| GPUs | routing | all-to-all | sharing | CPU (s) | wall (s) | peak RSS (MB) | step (ms) |",
         "| --- | --- | --- | --- | --- | --- | --- | --- |"]
def sharing(name):
    model = json.load(open(os.path.join(work, name, "summary.json")))["network_model"]
    return "max-min" if "max-min fair sharing" in model else "processor sharing"
for n in sizes:
    for routing in ("uniform", "zipf:1.0"):
        for a2a in ("direct", "hierarchical"):
            name = f"analytic-{n}-{routing}-{a2a}"
            w, r, s = runs[name]
            lines.append(f"| {n} | {routing} | {a2a} | {sharing(name)} | {w:.2f} | {float(walls[name]):.2f} | {r} | {float(s):.3f} |")
lines += ["", "## SimGrid replay (reference) against the fast path", "",
          "The plain SimGrid replay (`--engine simgrid`): one mailbox put/get per GPU-pair flow, max-min",
          "sharing on SimGrid 3.32 (CM02, equal sharing), the same traffic; the fast path with each of its",
          "sharing solvers (`--sharing max-min`, exact, run up to 256 GPUs; `--sharing processor-sharing`).",
          "Errors: relative to SimGrid, the step and the worst GPU's dispatch completion and step end. A",
          "run stopped at the time limit shows the CPU time it had used (a lower bound) and a lower bound",
          "on the speed-up.", "",
          "| GPUs | routing | all-to-all | SimGrid time (s) | SimGrid RSS (MB) | step SimGrid (ms) | max-min time (s) | speed-up | step error | worst GPU dispatch end | worst GPU step end | processor sharing time (s) | step error | worst GPU dispatch end | worst GPU step end |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
def against(reference, name, reference_step):
    """time, speed-up, step error, worst dispatch end, worst step end of run `name` against SimGrid."""
    if name not in runs:
        return ["-"] * 5
    w, _, step = runs[name]
    if reference_step == "timeout":
        return [f"{w:.2f}", f"> {runs[reference][0] / max(w, 1e-9):.0f}x", "-", "-", "-"]
    e = per_gpu_error(reference, name)
    sa, sb = float(reference_step), float(step)
    return [f"{w:.2f}", f"{runs[reference][0] / max(w, 1e-9):.0f}x", f"{(sb - sa) / sa * 100:+.3f}%",
            f"{e['dispatch'] * 100:.3f}%", f"{e['end'] * 100:.3f}%"]
cases = [(n, r, a) for n in sg_sizes for r in ("uniform", "zipf:1.0") for a in ("direct", "hierarchical")]
cases += [(n, "zipf:1.0", "direct") for n in sg_large]
for n, routing, a2a in cases:
    ref = f"simgrid-{n}-{routing}-{a2a}"
    wa, ra, sa = runs[ref]
    simgrid = [f"> {wa:.0f} (stopped)", "-", "-"] if sa == "timeout" else [f"{wa:.2f}", ra, f"{float(sa):.3f}"]
    mm = against(ref, f"analytic-ref-{n}-{routing}-{a2a}", sa)
    ps = against(ref, f"analytic-ps-{n}-{routing}-{a2a}", sa)
    lines.append("| " + " | ".join([n, routing, a2a] + simgrid + mm + [ps[0]] + ps[2:]) + " |")
lines += ["", "On a 4:1 oversubscribed, not rail-optimized fabric (tools/bench/dgx-h100-oversub4.yaml,",
          "64 GPUs, direct), where leaf uplinks bind together with NICs, processor sharing per link is an",
          "approximation of max-min sharing and max-min is exact:", "",
          "| routing | SimGrid time (s) | step SimGrid (ms) | max-min time (s) | speed-up | step error | worst GPU dispatch end | worst GPU step end | processor sharing time (s) | step error | worst GPU dispatch end | worst GPU step end |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for routing in ("uniform", "zipf:1.0"):
    ref = f"simgrid-oversub-{routing}"
    wa, _, sa = runs[ref]
    mm = against(ref, f"analytic-ref-oversub-{routing}", sa)
    ps = against(ref, f"analytic-ps-oversub-{routing}", sa)
    lines.append("| " + " | ".join([routing, f"{wa:.2f}", f"{float(sa):.3f}"] + mm + [ps[0]] + ps[2:]) + " |")
lines += ["", "## Full all-to-all", "",
          "Every GPU sends 1 MiB to every other GPU (`tests/bench:full_all_to_all`, dgx-h100-superpod,",
          "1024 GPUs: one pod; no compute, no per-call costs): the fast path's own time (routes, sharing",
          "solver, per-GPU totals), the whole process's CPU time (building the flows included) and peak",
          "RSS; the all-to-all's time, against a bound it must equal on this non-blocking fabric: the",
          "busiest link's bytes at its rate plus the longest route's latency.", "",
          "| sharing | flows | fast path (s) | process CPU (s) | peak RSS (MB) | all-to-all (ms) | busiest link + latency (ms) |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
for sharing in ("processor-sharing", "max-min"):
    text = open(os.path.join(work, f"full-a2a-{sharing}.out")).read()
    m = re.search(r"(\d+) flows .*: ([0-9.]+) s, all-to-all ([0-9.]+) ms, busiest link ([0-9.]+) ms \+ longest route ([0-9.]+) ms", text)
    _wall, user, sys_s, rss = open(os.path.join(work, f"full-a2a-{sharing}.time")).read().split()[-4:]
    lines.append(f"| {sharing} | {m.group(1)} | {float(m.group(2)):.2f} | {float(user) + float(sys_s):.2f} | {int(rss) // 1024} | "
                 f"{float(m.group(3)):.3f} | {float(m.group(4)) + float(m.group(5)):.3f} |")
lines += ["", "## Sweep throughput", "",
          "`epsim sweep` of scenarios of 64 GPUs (dgx-h100, 512 tokens per GPU, one step, analytic engine,",
          "seeds 1..N; each run a forked child process, as many at once as cores), measured first while",
          "nothing else ran, with `sharing: processor-sharing` and with `sharing: auto` (exact max-min at",
          "this size):", "",
          "| sharing | runs | wall (s) | CPU (s) | runs per second | rows in sweep.csv |", "| --- | --- | --- | --- | --- | --- |"]
for sharing in ("processor-sharing", "auto"):
    wall, user, sys_s, _ = open(os.path.join(work, f"sweep-{sharing}.time")).read().split()[-4:]
    rows = sum(1 for _ in open(os.path.join(work, f"sweep-{sharing}", "sweep.csv"))) - 1
    lines.append(f"| {sharing} | {rows} | {float(wall):.1f} | {float(user) + float(sys_s):.1f} | {rows / float(wall):.1f} | {rows} |")
open(out + ".tmp", "w").write("\n".join(lines) + "\n")
os.replace(out + ".tmp", out)
print("wrote", out)
PY
