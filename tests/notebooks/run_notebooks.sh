#!/bin/sh
# epsim tests: run every notebooks/*.ipynb top to bottom with Debian's Jupyter, headless.
#
#   bazel test //tests/notebooks:notebooks_test
#   tests/notebooks/run_notebooks.sh          # from the repository root, after bazel build
#
# Fails on any cell error, a notebook missing its figures, or a missing tool. Runs the
# simulations fresh into a temporary folder (EPSIM_RESULTS), writes the figures there
# (EPSIM_FIGURES), never into the source tree.
set -eu

ROOT=$(pwd)                                    # Bazel: the runfiles root (epsim/)
TMP=${TEST_TMPDIR:-$(mktemp -d)}
JUPYTER=/usr/bin/jupyter
if [ ! -x "$JUPYTER" ]; then
  echo "run_notebooks: $JUPYTER not found (tools/setup.sh installs jupyter-nbconvert)" >&2
  exit 1
fi

# The sandbox's HOME may not be writable: keep every Jupyter / matplotlib file in TMP.
export HOME="$TMP/home" JUPYTER_RUNTIME_DIR="$TMP/jupyter/runtime"
export JUPYTER_CONFIG_DIR="$TMP/jupyter/config" JUPYTER_DATA_DIR="$TMP/jupyter/data"
export IPYTHONDIR="$TMP/ipython" MPLCONFIGDIR="$TMP/matplotlib" MPLBACKEND=Agg
export PYDEVD_DISABLE_FILE_VALIDATION=1 PYTHONDONTWRITEBYTECODE=1
export PATH="/usr/bin:/bin:$PATH"              # Debian's python3, not a pyenv build
export EPSIM_RESULTS="$TMP/results" EPSIM_FIGURES="$TMP/figures"
mkdir -p "$HOME" "$JUPYTER_RUNTIME_DIR" "$MPLCONFIGDIR" "$EPSIM_FIGURES" "$TMP/executed"

# The epsim binary (sweeps included), unless EPSIM_BIN names another.
EPSIM_BIN=${EPSIM_BIN:-$ROOT/sim/epsim}
export EPSIM_BIN
echo "run_notebooks: EPSIM_BIN=$EPSIM_BIN"

status=0
for nb in "$ROOT"/notebooks/*.ipynb; do
  name=$(basename "$nb" .ipynb)
  start=$(date +%s)
  if "$JUPYTER" nbconvert --to notebook --execute --ExecutePreprocessor.timeout=900 \
      --ExecutePreprocessor.kernel_name=python3 --output-dir "$TMP/executed" "$nb" \
      >"$TMP/$name.log" 2>&1; then
    # nbconvert stops at the first failing cell; also refuse error outputs left in the copy.
    if grep -q '"output_type": "error"' "$TMP/executed/$name.ipynb"; then
      echo "FAIL $name: an error output in the executed notebook" >&2
      status=1
    else
      echo "ok   $name ($(( $(date +%s) - start )) s)"
    fi
  else
    echo "FAIL $name ($(( $(date +%s) - start )) s):" >&2
    tail -n 30 "$TMP/$name.log" >&2
    status=1
  fi
done

# Each notebook writes its key figures.
for fig in skew_phases skew_stall_heatmap capacity_tradeoff capacity_eplb scaling calibration_fit \
           calibration_residuals rebalance_steps; do
  if [ ! -s "$EPSIM_FIGURES/$fig.png" ]; then
    echo "FAIL: figure $fig.png was not written" >&2
    status=1
  fi
done
exit $status
