#!/usr/bin/env bash
# epsim fuzzing: builds libFuzzer targets for the six file loaders (topology, scenario,
# sweep, profile, routing_trace, nccl_tests) with clang + ASan + UBSan, runs each for a given time, and copies every
# crashing input to tests/robustness/regressions/<target>/, where
# //tests/robustness:regression_test replays it through the same loader.
#
#   tools/fuzz/build_and_run.sh 600                  # every target, 10 minutes each, one after another
#   tools/fuzz/build_and_run.sh 60 profile sweep     # two targets, one minute each
#   tools/fuzz/build_and_run.sh build                # build only
#
# Needs Debian's clang-14 and libclang-rt-14-dev (libFuzzer and the sanitizer runtimes), plus
# libyaml-cpp-dev and libsimgrid-dev (already needed by the build). Outside Bazel: the
# targets link the system yaml-cpp and SimGrid, which are not instrumented.
#
# Environment: EPSIM_FUZZ_DIR (work folder: objects, binaries, growing corpora, logs;
# default /tmp/epsim-fuzz), CXX (default clang++-14).
# Per target, the log is $EPSIM_FUZZ_DIR/<target>.log; the summary line gives the exec count.
# The growing corpora stay in $EPSIM_FUZZ_DIR/corpus/<target>/, never in tests/fuzz/corpus/
# (the seeds kept in the repository).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=${EPSIM_FUZZ_DIR:-/tmp/epsim-fuzz}
CXX=${CXX:-clang++-14}
ALL_TARGETS=(topology scenario sweep profile routing_trace nccl_tests)
mkdir -p "$WORK/obj" "$WORK/bin"

tools/setup.sh fuzz  # Debian's clang-14 and libclang-rt-14-dev, when missing
if ! command -v "$CXX" >/dev/null; then
  echo "build_and_run.sh: $CXX not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

# ---- build ----------------------------------------------------------------------------
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CXXFLAGS="-std=c++17 -g -O1 -fno-omit-frame-pointer $SANITIZE -I$ROOT"
# The libraries the targets reach: common/, the simulator's stages but its CLI, the profile.
LIB_SOURCES=$(ls common/*.cc sim/*/*.cc calibrate/profile/*.cc calibrate/fit.cc calibrate/nccl_tests.cc | grep -v '^sim/cli/')
objects=()
for src in $LIB_SOURCES; do
  obj="$WORK/obj/$(echo "$src" | tr / _).o"
  if [[ ! -f "$obj" || "$src" -nt "$obj" || -n "$(find common sim calibrate -name '*.h' -newer "$obj" -print -quit)" ]]; then
    echo "compile $src"
    $CXX $CXXFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
  fi
  objects+=("$obj")
done
for target in "${ALL_TARGETS[@]}"; do
  bin="$WORK/bin/fuzz_$target"
  # Relink only when something changed, so that several targets can run side by side:
  #   for t in topology scenario sweep profile routing_trace nccl_tests; do nice -n 19 tools/fuzz/build_and_run.sh 600 $t & done
  if [[ -f "$bin" && -z "$(find "${objects[@]}" tests/fuzz -maxdepth 1 -name 'fuzz_*' -newer "$bin" -print -quit)" ]]; then
    continue
  fi
  echo "link $bin"
  $CXX $CXXFLAGS -fsanitize=fuzzer "tests/fuzz/fuzz_$target.cc" "${objects[@]}" \
    -lyaml-cpp -lsimgrid -lpthread -o "$bin"
done
if [[ "${1:-}" == "build" ]]; then exit 0; fi

# ---- run ------------------------------------------------------------------------------
seconds=${1:?usage: build_and_run.sh SECONDS [TARGET...] | build}
shift
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=("${ALL_TARGETS[@]}"); fi

seed_corpus() {  # target -> the bundled files it should start from
  case "$1" in
    topology) ls topologies/*.yaml ;;
    scenario) ls scenarios/*.yaml ;;
    sweep) ls scenarios/sweeps/*.yaml 2>/dev/null || true ;;
    profile) ls calibrate/profiles/*.yaml ;;
    routing_trace) ls tests/testdata/*.csv 2>/dev/null || true ;;  # read with the default model (32, top-4)
    nccl_tests) ls tests/calibrate/testdata/*.txt ;;
  esac
  ls "tests/fuzz/corpus/$1"/* 2>/dev/null || true
  ls "tests/robustness/regressions/$1"/* 2>/dev/null || true
}

for target in "${targets[@]}"; do
  corpus="$WORK/corpus/$target"
  artifacts="$WORK/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  for f in $(seed_corpus "$target"); do cp -f "$f" "$corpus/seed_$(basename "$f")"; done
  log="$WORK/$target.log"
  : >"$log"
  dict="tests/fuzz/$target.dict"  # the CSV loader has its own; the YAML loaders share one
  [[ -f "$dict" ]] || dict=tests/fuzz/yaml.dict
  started=$(date +%s)
  execs=0
  runs=0
  # libFuzzer stops at the first crash: keep it, then go on for the rest of the time (at most
  # 5 restarts, so that one unfixed crash does not fill the log).
  while :; do
    left=$((seconds - ($(date +%s) - started)))
    if ((left <= 0 || runs > 5)); then break; fi
    runs=$((runs + 1))
    set +e
    "$WORK/bin/fuzz_$target" "$corpus" -dict="$dict" -max_total_time="$left" \
      -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="$artifacts" >>"$log" 2>&1
    rc=$?
    set -e
    n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    execs=$((execs + ${n:-0}))
    if ((rc == 0)); then break; fi
  done
  crashes=0
  for a in "$artifacts"*; do
    [[ -f "$a" ]] || continue
    mkdir -p "tests/robustness/regressions/$target"
    dest="tests/robustness/regressions/$target/$(basename "$a")"
    if [[ ! -f "$dest" ]]; then cp "$a" "$dest"; crashes=$((crashes + 1)); fi
  done
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  echo "fuzz_$target: ${seconds}s, $execs execs, $cov, corpus $(ls "$corpus" | wc -l) files, $crashes new crashing inputs -> tests/robustness/regressions/$target/"
done
