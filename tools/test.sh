#!/usr/bin/env bash
# Builds everything and runs every test (the README's test command; .ci/run calls it).
#   tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
status=0
bazel test --ui_event_filters=-debug //... || status=$?
# The unit suites again under AddressSanitizer + UndefinedBehaviorSanitizer (.bazelrc;
# about 6-7 minutes on 2 cores, most of it the instrumented rebuild).
bazel test --ui_event_filters=-debug --config=asan --config=ubsan \
  //tests/sim/... //tests/kernels/... //tests/calibrate/... //tests/robustness/... || status=$?
bazel shutdown
exit $status
