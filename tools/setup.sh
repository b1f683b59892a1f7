#!/usr/bin/env bash
# Installs the Debian packages epsim builds and tests with, only those missing
# (idempotent; safe to run every time). Needs root or sudo for apt-get.
#   tools/setup.sh          build, tests, notebooks
#   tools/setup.sh fuzz     also clang and its libFuzzer runtime (tools/fuzz/build_and_run.sh)
#   tools/setup.sh cuda11   also g++-11, the host compiler of CUDA 11.8 (tools/cuda11_toolkit.sh)
set -euo pipefail

packages=(
  g++ bazel-bootstrap bazel-platforms bazel-rules-java   # build
  libsimgrid-dev libyaml-cpp-dev libeigen3-dev libgtest-dev  # libraries
  libopenmpi-dev openmpi-bin                                  # CPU all-to-all, distributed sweeps
  jupyter-nbconvert python3-ipykernel python3-matplotlib python3-pandas  # notebooks
)
if [ "${1:-}" = "fuzz" ]; then
  packages+=(clang-14 libclang-rt-14-dev)
fi
if [ "${1:-}" = "cuda11" ]; then
  packages+=(g++-11)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "epsim setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi
