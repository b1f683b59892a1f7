#!/usr/bin/env bash
# epsim calibration tests: the all-to-all sweep on 2 MPI ranks (MPI_Alltoallv), as
#   mpirun -np 2 --oversubscribe epsim-calibrate --backend cpu --ops a2a --sweep tiny
# checking that rank 0 writes a fitted alltoall model; then the same with one received byte
# corrupted (EPSIM_CALIBRATE_CORRUPT_OP=a2a, the calibrator's test hook): the exchange check
# must catch it on every rank, exit non-zero, say so in one line and write nothing.
# Skips when mpirun is missing or the build has no MPI.
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

# A wrong exchange: non-zero exit, one line from rank 0 naming the op and the wrong byte,
# nothing in the output folder.
bad="$TMPDIR/corrupt"
rm -rf "$bad" && mkdir -p "$bad"
set +e
EPSIM_CALIBRATE_CORRUPT_OP=a2a timeout -s KILL 120 mpirun -np 2 --oversubscribe "$bin" --backend cpu --ops a2a \
  --sweep tiny --no-progress --out "$bad/a2a.yaml" >"$TMPDIR/corrupt.out" 2>"$TMPDIR/corrupt.err"
rc=$?
set -e
fail() { echo "corrupted a2a: $1"; echo "--- stderr"; cat "$TMPDIR/corrupt.err"; exit 1; }
[ "$rc" -ne 0 ] || fail "exit status 0"
[ "$rc" -ne 137 ] || fail "hung (killed after 120 s)"
lines=$(grep -c '^epsim-calibrate: ' "$TMPDIR/corrupt.err" || true)
[ "$lines" -eq 1 ] || fail "$lines lines from epsim-calibrate, expected 1"
grep -q '^epsim-calibrate: a2a: MPI_Alltoallv delivered wrong bytes to rank 0: byte 0 of 1000 from rank 0 is 1, expected 0; nothing written$' \
  "$TMPDIR/corrupt.err" || fail "not the expected line"
[ -z "$(ls -A "$bad")" ] || fail "wrote $(ls -A "$bad")"
echo "OK"
