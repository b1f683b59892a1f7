#!/usr/bin/env bash
# epsim calibration tests: the all-to-all sweep on 2 MPI ranks (MPI_Alltoallv), as
#   mpirun -np 2 --oversubscribe epsim-calibrate --backend cpu --ops a2a --sweep tiny
# checking that rank 0 writes a fitted alltoall model. Skips when mpirun is missing.
set -euo pipefail
bin="$1"
if ! command -v mpirun >/dev/null; then
  echo "SKIP: mpirun not found (install openmpi-bin and libopenmpi-dev)"
  exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_plm=isolated OMPI_MCA_btl_vader_single_copy_mechanism=none
export TMPDIR="${TEST_TMPDIR:-/tmp}"
out="$TMPDIR/a2a.yaml"
mpirun -np 2 --oversubscribe "$bin" --backend cpu --ops a2a --sweep tiny --no-progress --out "$out"
if grep -q "built without MPI" "$out"; then echo "SKIP: built without MPI"; exit 0; fi
grep -q "form: alltoall" "$out" || { echo "no alltoall model in $out"; cat "$out"; exit 1; }
grep -q "backend: mpi" "$out"
grep -q "num_ranks: 2" "$out"
grep -q "bandwidth_GBps:" "$out"
[ "$(grep -c '^a2a,' "$TMPDIR/a2a.csv")" -ge 8 ] || { echo "too few a2a samples"; exit 1; }
echo "OK"
