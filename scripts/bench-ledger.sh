#!/usr/bin/env bash
# Metering benchmark through the network path: the release server pinned to
# core 0 (one event loop), `billing load` pinned to core 1, 4 connections x 32
# streams, unique idempotency keys, accounts provisioned with credits first.
# Prints each RPC's throughput, latency and the server's CPU time per call
# (steadier than throughput on a machine whose speed varies); then h2load on
# the same server and load (the read-only methods with one fixed request
# each, Health/Check as the transport's ceiling for the durable ones) and the
# ratios; then reconciles.
#
# Usage: scripts/bench-ledger.sh [seconds-per-rpc] [accounts]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
accounts=${2:-10000}
source scripts/bench-common.sh

start_server "$work/server.log" warning
# The server's CPU time (user + system ticks), sampled every 0.2 s: a run's
# CPU per call is taken over its last `seconds` (after its accounts exist).
( while kill -0 "$server" 2>/dev/null; do echo "$(date +%s%N) $(awk '{print $14 + $15}' "/proc/$server/stat")"; sleep 0.2; done ) \
  > "$work/cpu" 2>/dev/null &
cpu_per_call() {  # end-ns calls: server CPU microseconds per call over the run's timed part
  python3 - "$work/cpu" "$1" "$seconds" "$2" "$(getconf CLK_TCK)" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 2]
end, seconds, calls, hz = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
a = min(rows, key=lambda r: abs(r[0] - (end - seconds * 1e9)))
b = min(rows, key=lambda r: abs(r[0] - end))
cpu, wall = (b[1] - a[1]) / hz, (b[0] - a[0]) / 1e9
print(f"server CPU {100 * cpu / wall:.0f}% of its core, {1e6 * cpu / wall * seconds / max(calls, 1):.1f} us per call")
PY
}

declare -A load_rate h2_rate
last_run=""
for mix in debit:1 quote:1 batch:1 cost:1 usage:1; do
  echo "== $mix ($seconds s, $accounts accounts; batch: 100 debits per call)"
  out=$(BILLING_KEY="$key" taskset -c 1 "$bin" load --target "127.0.0.1:$(cat "$work/port")" --duration "$seconds" \
    --accounts "$accounts" --mix "$mix" --batch-size 100 --connections 4 --streams 32 2>/dev/null)
  ended=$(date +%s%N)
  # The summary with its outcomes: a figure counts every answered call,
  # so a run whose calls were refused shows it here.
  echo "$out" | sed -n '1,3p'; echo "$out" | sed -n '/^outcomes:/,$p' | tr '\n' ' '; echo
  echo "$(cpu_per_call "$ended" "$(echo "$out" | sed -n 's/^run [^:]*: \([0-9]*\) calls.*/\1/p')")"
  load_rate[${mix%%:*}]=$(echo "$out" | sed -n 's/^run [^:]*: .* = \([0-9]*\) calls\/s$/\1/p')
  if [ "${mix%%:*}" = batch ]; then  # debits accepted per second, over the run's own elapsed time
    batch_debits=$(echo "$out" | python3 -c "import re,sys; t=sys.stdin.read(); print(int(int(re.search(r'debits acknowledged: (\d+)', t)[1]) / float(re.search(r' in ([0-9.]+) s = ', t)[1])))")
  fi
  last_run=$(echo "$out" | sed -n 's/^run \(load-[^:]*\):.*/\1/p')
done
# The same server driven by h2load (one thread, same 4 x 32, same duration):
# the read-only methods with one fixed request each, and Health/Check as the
# transport's ceiling for the durable methods (h2load cannot send unique
# idempotency keys). Requests are gRPC-framed protobuf built here.
account="$(echo "$last_run")-a0"
BILLING_KEY="$key" "$bin" call billing.v1.Metering/Debit --target "127.0.0.1:$(cat "$work/port")" -d \
  "{\"account_id\":\"$account\",\"workspace_id\":\"w1\",\"agent_id\":\"agent-0\",\"run_id\":\"bench-run\",\"idempotency_key\":\"bench-h2load\",\"line_items\":[{\"llm\":{\"model\":\"gpt-4o-mini\",\"input_tokens\":1200,\"output_tokens\":300}}]}" >/dev/null
python3 scripts/grpc_body.py "$work" "$account"
h2() {  # method path, body file: h2load's calls/s, after checking the request is answered OK
  local url="http://127.0.0.1:$(cat "$work/port")$1"
  local headers=(-H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $key")
  nghttp -v -d "$2" "${headers[@]}" "$url" 2>&1 | grep -q 'grpc-status: 0$' || { echo "not OK: $1" >&2; echo 0; return; }
  taskset -c 1 h2load -D "$seconds" -c 4 -m 32 -t 1 -d "$2" "${headers[@]}" "$url" 2>/dev/null \
    | sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p'
}
echo "== h2load on the same server, 4 x 32, $seconds s each (one fixed request per method)"
for pair in "quote:/billing.v1.Metering/Quote" "cost:/billing.v1.Metering/GetExecutionCost" \
            "usage:/billing.v1.Metering/GetUsage" "health:/grpc.health.v1.Health/Check"; do
  name=${pair%%:*}
  h2_rate[$name]=$(h2 "${pair#*:}" "$work/$name.bin")
done
ratio() { python3 -c "print(f'{float(\"$1\") / float(\"$2\"):.2f}' if float(\"$2\") else 'n/a')"; }
echo "== summary: billing load vs h2load on the same method (durable ones: vs Health/Check, the transport's ceiling)"
for name in debit quote batch cost usage; do
  reference=${name}; [ "$name" = debit ] || [ "$name" = batch ] && reference=health
  extra=""; [ "$name" = batch ] && extra=" (${batch_debits:-0} debits acknowledged/s)"
  echo "  $name: billing load ${load_rate[$name]} calls/s$extra, h2load ${reference} ${h2_rate[$reference]} calls/s, ratio $(ratio "${load_rate[$name]}" "${h2_rate[$reference]}")"
done
echo "== reconcile"
"$bin" verify --db "$work/db.sqlite" | tail -2
