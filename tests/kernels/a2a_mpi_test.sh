#!/usr/bin/env bash
# epsim kernel tests: runs a2a_mpi_check on 2 ranks with mpirun (as root, OpenMPI needs its
# allow-run-as-root variables). Skips, passing, when mpirun is not installed.
set -euo pipefail
check="$1"
if ! command -v mpirun >/dev/null; then
  echo "SKIP: mpirun not found (install openmpi-bin and libopenmpi-dev)"
  exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# No shared-memory segment name clashes or network probing inside the test sandbox.
export OMPI_MCA_btl=self,vader OMPI_MCA_plm=isolated OMPI_MCA_btl_vader_single_copy_mechanism=none
export TMPDIR="${TEST_TMPDIR:-/tmp}"
out=$(mpirun -np 2 --oversubscribe "$check" 2>&1) || { echo "$out"; exit 1; }
echo "$out"
if echo "$out" | grep -q '^SKIP'; then exit 0; fi
[ "$(echo "$out" | grep -c ': OK')" -eq 2 ] || { echo "expected 2 ranks to report OK"; exit 1; }
