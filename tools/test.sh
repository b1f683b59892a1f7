#!/usr/bin/env bash
# Builds everything and runs every test (the README's test command; .ci/run calls it).
#   tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
status=0
bazel test --ui_event_filters=-debug //... || status=$?
bazel shutdown
exit $status
