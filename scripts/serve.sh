#!/usr/bin/env bash
# Quick start: install what is missing, build, and serve on the embedded
# default (h2c on 127.0.0.1:50051, SQLite at var/billing.sqlite).
# Extra arguments go to `billing serve` (see `billing serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product billing
mkdir -p var
exec "$(swift build -c release --show-bin-path)/billing" serve "$@"
