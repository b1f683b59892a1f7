#!/usr/bin/env bash
# Builds everything and runs every test (the README's test command; .ci/run calls it).
#   tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
status=0
# Folders use each other only in the allowed direction (README "How the code is laid out"),
# and the checker itself catches a wrong include and a cycle.
/usr/bin/python3 tools/check_layout.py --self-test || status=$?
/usr/bin/python3 tools/check_layout.py || status=$?
bazel test --ui_event_filters=-debug //... || status=$?
# The unit suites again under AddressSanitizer + UndefinedBehaviorSanitizer (.bazelrc;
# about 6-7 minutes on 2 cores, most of it the instrumented rebuild).
bazel test --ui_event_filters=-debug --config=asan --config=ubsan \
  //tests/common/... //tests/sim/... //tests/kernels/... //tests/calibrate/... //tests/robustness/... || status=$?
bazel shutdown
exit $status
