#!/usr/bin/env bash
# Builds what tools/gpu_check.sh runs on a GPU box (which has only the driver, the CUDA
# runtime, cuBLAS and NCCL: no Bazel, SimGrid, yaml-cpp or MPI) and packs it in one folder.
#   tools/build_gpu_bundle.sh [--cuda 11.8] [BUNDLE_DIR]   (default: /tmp/epsim-gpu-bundle)
#   scp -r /tmp/epsim-gpu-bundle gpu-box: && ssh gpu-box epsim-gpu-bundle/gpu_check.sh /tmp/out
# Needs nvcc here ($CUDA_PATH, else /usr/local/cuda): without it the binaries would have no
# CUDA backend. The CUDA runtime is linked statically, so the toolkit sets the oldest driver
# the bundle runs on: CUDA 13.0 needs driver branch 580 or newer. `--cuda 11.8` builds with
# Debian's CUDA 11.8 (unpacked by tools/cuda11_toolkit.sh), which runs on driver 520 or
# newer (the R535-R570 drivers of most H100/H200 boxes); cuBLAS and NCCL are the GPU box's
# own either way. The binaries need glibc 2.34 or newer (this machine's Debian 12 links them):
# Ubuntu 22.04, RHEL 9 and newer.
set -euo pipefail
cd "$(dirname "$0")/.."
output_base="${EPSIM_BAZEL_OUTPUT_BASE:-$HOME/.cache/bazel_gpu_bundle}"
if [ "${1:-}" = "--cuda" ]; then
  [ "${2:-}" = "11.8" ] || { echo "build_gpu_bundle: --cuda takes 11.8 (else \$CUDA_PATH or /usr/local/cuda)" >&2; exit 2; }
  CUDA_PATH="$(tools/cuda11_toolkit.sh)"
  export CUDA_PATH
  output_base="${EPSIM_BAZEL_OUTPUT_BASE:-$HOME/.cache/bazel_gpu_bundle_cuda11}"
  shift 2
fi
bundle="${1:-/tmp/epsim-gpu-bundle}"
targets=(//calibrate:epsim-calibrate //tests/kernels:gpu_kernels_test //tests/kernels:cpu_kernels_test)
# MPI left out (--define=epsim_mpi=off): the GPU box has no libmpi.
# --symlink_prefix=/: no bazel-* links in the work tree, which would point into this other
# output base and make the main build's `//...` descend into them.
bazel --output_base="$output_base" build --symlink_prefix=/ --define=epsim_mpi=off "${targets[@]}"
bin="$(bazel --output_base="$output_base" info --define=epsim_mpi=off bazel-bin 2>/dev/null)"
if ! grep -q "CUDA_AVAILABLE = True" "$output_base"/external/local_cuda/defs.bzl; then
  echo "build_gpu_bundle: nvcc was not found at build time: the binaries have no CUDA backend" >&2
  exit 1
fi
rm -rf "$bundle"
mkdir -p "$bundle/bin"
cp "$bin/calibrate/epsim-calibrate" "$bin/tests/kernels/gpu_kernels_test" \
   "$bin/tests/kernels/cpu_kernels_test" "$bundle/bin/"
chmod u+w "$bundle"/bin/*
cp tools/gpu_check.sh "$bundle/"
# What the binaries need from the GPU box: the C and C++ runtime libraries only (cuBLAS and
# NCCL are dlopen'ed at run time; the CUDA runtime, yaml-cpp and gtest are static).
{
  for b in "$bundle"/bin/*; do
    echo "== $(basename "$b")"
    ldd "$b" | awk '{print "  " $1}'
  done
} > "$bundle/NEEDED.txt"
cat "$bundle/NEEDED.txt"
for b in "$bundle"/bin/*; do
  if ldd "$b" | grep -Eq 'libyaml|libmpi|libcudart|libcublas|libnccl|libgtest|\.so => not found|lib[a-z_]*_S'; then
    echo "build_gpu_bundle: $(basename "$b") still needs a library the GPU box may lack" >&2
    exit 1
  fi
done
bazel --output_base="$output_base" shutdown
echo "build_gpu_bundle: wrote $bundle (run: $bundle/gpu_check.sh OUT_DIR)"
