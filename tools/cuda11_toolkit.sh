#!/usr/bin/env bash
# Unpacks Debian 12's CUDA 11.8 compiler into a folder of its own, for a GPU bundle that runs on
# the drivers most H100/H200 boxes have. CUDA 13.0's runtime (/usr/local/cuda) needs driver
# branch 580 or newer; CUDA 11.8's needs 520 or newer (R535-R570 included), and sm_90 is in it.
#   tools/cuda11_toolkit.sh [DIR]       (default: $HOME/.cache/epsim-cuda-11.8); prints DIR
# Then: CUDA_PATH=DIR tools/build_gpu_bundle.sh   (tools/build_gpu_bundle.sh --cuda 11.8 does both)
#
# Nothing is installed system-wide but g++-11 (nvcc 11.8 takes host compilers up to GCC 11):
# the packages come from Debian's non-free component through a private source list, are
# fetched with `apt-get download` (no dependencies: the driver packages stay out) and are
# unpacked with `dpkg -x`. Only what the build uses is kept: the compiler, the headers and the
# static CUDA runtime. cuBLAS and NCCL are dlopen'ed at run time, so the bundle uses the GPU
# box's own; NCCL's header (Debian has no NCCL) is copied from /usr/local/cuda. Idempotent:
# an unpacked DIR with its stamp file is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$HOME/.cache/epsim-cuda-11.8}"
version="11.8.89~11.8.0-5~deb12u1"
stamp="$dir/.epsim-unpacked-$version"
if [ -f "$stamp" ]; then
  echo "$dir"
  exit 0
fi

tools/setup.sh cuda11 >&2   # g++-11

nccl_header=/usr/local/cuda/include/nccl.h
[ -f "$nccl_header" ] || { echo "cuda11_toolkit: $nccl_header not found (NCCL's header comes from the CUDA 13 install)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/debs"
cat > "$work/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main non-free
EOF
apt_opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=-
          -o Dir::State::Lists="$work/lists" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq >&2
# nvcc and its tools; the runtime headers and libcudart_static.a; CUB/Thrust/libcu++, which
# nvidia-cuda-dev takes from separate packages.
(cd "$work/debs" && apt-get "${apt_opts[@]}" download -qq \
  "nvidia-cuda-toolkit=$version" "nvidia-cuda-dev=$version" libcub-dev libthrust-dev libcu++-dev) >&2

rm -rf "$dir.partial"
mkdir -p "$dir.partial"
root="$dir.partial/root"
mkdir -p "$root"
for deb in "$work"/debs/nvidia-cuda-toolkit_*.deb "$work"/debs/libcub-dev_*.deb \
           "$work"/debs/libthrust-dev_*.deb "$work"/debs/libcu++-dev_*.deb; do
  dpkg -x "$deb" "$root"
done
# nvidia-cuda-dev is 2.8 GB unpacked, nearly all static libraries the build does not link.
dpkg-deb --fsys-tarfile "$work"/debs/nvidia-cuda-dev_*.deb |
  tar -x -C "$root" --wildcards './usr/include/*' \
    './usr/lib/x86_64-linux-gnu/libcudart_static.a' './usr/lib/x86_64-linux-gnu/libculibos.a'
cp "$nccl_header" "$root/usr/include/nccl.h"

# Debian's nvcc finds its tools through /etc/nvcc.profile (absolute paths): give the real
# binary a profile relative to itself, and a CUDA_PATH-shaped tree (bin, include, lib64).
toolkit="$root/usr/lib/nvidia-cuda-toolkit"
rm -f "$toolkit/bin/nvcc.profile"
cat > "$toolkit/bin/nvcc.profile" <<'EOF'
# Written by tools/cuda11_toolkit.sh: Debian's /etc/nvcc.profile with paths relative to nvcc.
NVVMIR_LIBRARY_DIR = $(_HERE_)/../libdevice
PATH		+= $(_HERE_):$(_HERE_)/../../../bin:
INCLUDES	+= "-I$(_HERE_)/../../../include" $(_SPACE_)
LIBRARIES	=+ $(_SPACE_) "-L$(_HERE_)/../../x86_64-linux-gnu"
EOF
ln -s root/usr/lib/nvidia-cuda-toolkit/bin "$dir.partial/bin"
ln -s root/usr/include "$dir.partial/include"
ln -s root/usr/lib/x86_64-linux-gnu "$dir.partial/lib64"

"$dir.partial/bin/nvcc" --version | grep -q "release 11.8" ||
  { echo "cuda11_toolkit: the unpacked nvcc does not run" >&2; exit 1; }
touch "$dir.partial/.epsim-unpacked-$version"
rm -rf "$dir"
mv "$dir.partial" "$dir"
echo "$dir"
