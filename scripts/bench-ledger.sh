#!/usr/bin/env bash
# Metering benchmark through the network path: the release server pinned to
# core 0 (one event loop), `billing load` pinned to core 1, 4 connections x 32
# streams, unique idempotency keys, accounts provisioned with credits first.
# Prints each RPC's throughput and latency, then reconciles the ledger.
#
# Usage: scripts/bench-ledger.sh [seconds-per-rpc] [accounts]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
accounts=${2:-10000}
bin="${BILLING_BIN:-$(swift build -c release --show-bin-path)/billing}"
[ -x "$bin" ] || swift build -c release --product billing
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --port-file "$work/port" --threads 1 --log-level warning \
  --db "$work/bench.sqlite" --demo-credentials-file "$work/credentials.json" >/dev/null 2>"$work/server.log" &
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
key=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['service_key'])" "$work/credentials.json")

for mix in debit:1 quote:1 batch:1 cost:1 usage:1; do
  echo "== $mix ($seconds s, $accounts accounts; batch: 100 debits per call)"
  BILLING_KEY="$key" taskset -c 1 "$bin" load --target "127.0.0.1:$(cat "$work/port")" --duration "$seconds" \
    --accounts "$accounts" --mix "$mix" --batch-size 100 --connections 4 --streams 32 2>/dev/null | sed -n '1,3p'
done
echo "== reconcile"
"$bin" verify --db "$work/bench.sqlite" | tail -2
