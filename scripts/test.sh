#!/usr/bin/env bash
# Runs every test: the Swift unit and in-memory transport tests, then the
# interop tests (Python grpcio and h2 against the real server over loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
BILLING_BIN="$(swift build --show-bin-path)/billing" python3 -m pytest -q Tests/Interop
