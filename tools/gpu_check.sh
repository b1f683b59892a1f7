#!/usr/bin/env bash
# Runs the GPU kernel tests and a --quick CUDA calibration from prebuilt binaries (made by
# tools/build_gpu_bundle.sh on a development machine), on a GPU box that has only the
# driver, the CUDA runtime, cuBLAS and NCCL. Writes the profile, its CSV and a log to OUT_DIR.
#   gpu_check.sh OUT_DIR [PROFILE_NAME]      (name default: from nvidia-smi, e.g. h200)
# Exit status: 0 all passed; 1 a test failed, a kernel was wrong or calibration failed.
# Everything it runs is also exercised on CPU machines: the same tests (CUDA parts skipped)
# and `epsim-calibrate --backend cpu` in tests/calibrate.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/bin"
[ -x "$bin/epsim-calibrate" ] || { echo "gpu_check: no binaries in $bin (make them with tools/build_gpu_bundle.sh)" >&2; exit 1; }
out="${1:?usage: gpu_check.sh OUT_DIR [PROFILE_NAME]}"
mkdir -p "$out"
log="$out/gpu_check.log"
: > "$log"
say() { echo "$*" | tee -a "$log"; }

# cuBLAS and NCCL are loaded at run time: make the usual folders visible.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu /usr/local/nccl/lib; do
  [ -d "$d" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
export LD_LIBRARY_PATH

name="${2:-}"
if [ -z "$name" ] && command -v nvidia-smi >/dev/null; then
  # "NVIDIA H200" -> h200; "NVIDIA H100 80GB HBM3" -> h100
  name="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | awk '{print tolower($2)}')"
fi
name="${name:-gpu}"

say "# gpu_check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), profile name $name"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv | tee -a "$log"
say "# LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

status=0
# This is a GPU box: a GPU test that cannot reach the GPU fails instead of skipping
# (tests/kernels/gpu_kernels_test.cc; only the NCCL test, which needs 2+ GPUs, may skip).
export EPSIM_EXPECT_GPU=1
for t in cpu_kernels_test gpu_kernels_test; do
  say "## $t"
  "$bin/$t" --gtest_output="xml:$out/$t.xml" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then say "gpu_check: $t FAILED (exit $rc)"; status=1; fi
done
if grep -q "SKIPPED" "$out/gpu_kernels_test.xml" 2>/dev/null || grep -q '\[  SKIPPED \]' "$log"; then
  say "gpu_check: note: a GPU test was skipped (reason above): the NCCL test needs 2+ GPUs"
fi

say "## epsim-calibrate --backend cuda --quick"
"$bin/epsim-calibrate" --backend cuda --quick --ops route,layout,permute,expert,combine,a2a \
  --out "$out/$name.yaml" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then say "gpu_check: epsim-calibrate FAILED (exit $rc)"; status=1; fi

say "# gpu_check: done, status $status; files in $out:"
ls -l "$out" | tee -a "$log"
exit $status
