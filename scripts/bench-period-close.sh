#!/usr/bin/env bash
# A month's end for many accounts at once: N Pro accounts (no payment method,
# so each close issues an invoice and records a failed payment), then one
# Admin AdvanceClock of 32 days on a --test-clock server. Prints how long the
# clock took to close every period, and the transitions per second. Server
# on core 0, client on core 1.
#
# Usage: scripts/bench-period-close.sh [accounts]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
accounts=${1:-10000}
source scripts/bench-common.sh

start_server "$work/server.log" warning --test-clock
export BILLING_KEY=$key
target="127.0.0.1:$(cat "$work/port")"

echo "== creating $accounts Pro accounts"
taskset -c 1 "$bin" load --target "$target" --mix quote:1 --requests 1 --duration 3600 --accounts "$accounts" \
  --connections 1 --streams 1 >/dev/null 2>&1
echo "== AdvanceClock by 32 days: every period closes"
started=$(date +%s%N)
taskset -c 1 "$bin" call billing.v1.Admin/AdvanceClock --target "$target" --timeout-millis 3600000 \
  -d '{"seconds": 2764800}' > "$work/advance.json"
elapsed=$(( $(date +%s%N) - started ))
python3 - "$work/advance.json" "$elapsed" "$accounts" <<'PY'
import collections, json, sys
transitions = json.load(open(sys.argv[1])).get("transitions", [])
seconds = int(sys.argv[2]) / 1e9
kinds = collections.Counter(t["kind"] for t in transitions)
print(f"  {len(transitions)} transitions ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}) "
      f"for {sys.argv[3]} accounts in {seconds:.2f} s: {len(transitions) / seconds:,.0f} transitions/s")
PY
