#!/usr/bin/env bash
# Runs every test: the Swift unit and in-memory transport tests, then the
# interop tests (Python grpcio and h2 against the real server over loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Warnings stay at zero: any in the build fails the run (a clean clone
# builds everything, so every warning is printed).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift build --build-tests 2>&1 | tee "$log"
if grep -E ': warning:' "$log"; then
  echo "the build has warnings (above); keep them at zero" >&2
  exit 1
fi
# Each phase has a deadline (a few times its usual length on a slow
# machine): a hang then fails the run with every thread's stack printed
# (scripts/with-deadline.sh) instead of stalling CI.
# Known open defect (README, Tests): `swift test` sometimes stops with every
# task waiting (about 1 run in 10-30). It then fails here with the stacks,
# and runs once more — a second hang, or any failure, fails CI.
status=0
bash scripts/with-deadline.sh "${SWIFT_TEST_DEADLINE:-300}" swift test --skip-build || status=$?
if [ "$status" -eq 124 ]; then
  echo "test.sh: swift test hung (the known intermittent hang; stacks above): running it once more" >&2
  bash scripts/with-deadline.sh "${SWIFT_TEST_DEADLINE:-300}" swift test --skip-build
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi
BILLING_BIN="$(swift build --show-bin-path)/billing" \
  bash scripts/with-deadline.sh "${INTEROP_DEADLINE:-2700}" python3 -m pytest -q Tests/Interop
