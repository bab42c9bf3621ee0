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
bash scripts/with-deadline.sh "${SWIFT_TEST_DEADLINE:-900}" swift test --skip-build
BILLING_BIN="$(swift build --show-bin-path)/billing" \
  bash scripts/with-deadline.sh "${INTEROP_DEADLINE:-2700}" python3 -m pytest -q Tests/Interop
