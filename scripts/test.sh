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
swift test --skip-build
BILLING_BIN="$(swift build --show-bin-path)/billing" python3 -m pytest -q Tests/Interop
