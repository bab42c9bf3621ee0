#!/usr/bin/env bash
# Heap allocations per call of one metering method, for each `billing`
# binary given: a count that, unlike CPU time, does not drift with this
# machine's speed, for judging changes too small for `bench-ab.sh` to see.
# Each binary runs a fresh server (core 0, one event loop) under `billing
# load` (core 1, 4 connections x STREAMS streams, 10,000 Pro accounts);
# after WARM seconds, uprobes count jemalloc's `malloc` in the server and its
# answered calls (`GRPCServerConnection.handlerFinished`) for 3 s, on the
# event loop's thread only (WHERE=loop, the default: the per-call path of a
# unary method, without the journal's per-commit and the checkpoints'
# bursty allocations, which made whole-process counts vary by ~15 %) or the
# whole process (WHERE=all; DebitBatch's per-debit work is on the pool).
# Uprobes slow the server ~10x while they count: only the ratio means anything.
# Needs root (perf probe) and perf.
#
# Usage: scripts/bench-allocs.sh MIX BINARY...   (MIX: debit:1, quote:1, batch:1, ...)
# Environment: STREAMS (32), WARM (15), BATCH (100; a batch:1 call's debits), WHERE (loop)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
mix=$1; shift
jemalloc=$(ldconfig -p | sed -n 's/.*libjemalloc.so.2 .*=> \(.*\)/\1/p' | head -1)
[ -n "$jemalloc" ] || { echo "libjemalloc.so.2 not found" >&2; exit 1; }
# The answered-call hook, by its (stable) mangled name.
finished='$s4GRPC20GRPCServerConnectionC15handlerFinishedyys5Int32V_s6ResultOySays5UInt8VGAA10GRPCStatusVGtF'
probes=()
cleanup() {
  for p in "${probes[@]}"; do perf probe -q -d "$p" 2>/dev/null || true; done
  kill $(jobs -p) 2>/dev/null || true
}
trap cleanup EXIT
perf probe -q -d 'probe_libjemalloc:malloc' 2>/dev/null || true
perf probe -q -x "$jemalloc" -a malloc
probes+=('probe_libjemalloc:malloc')

index=0
for bin in "$@"; do
  index=$((index + 1))
  name="billingcall$index"
  perf probe -q -d "probe_billing:$name" 2>/dev/null || true
  perf probe -q -x "$bin" -a "$name=$finished"
  probes+=("probe_billing:$name")
  work=$(mktemp -d)
  taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --port-file "$work/port" --threads 1 --log-level warning \
    --db "$work/db.sqlite" --demo-credentials-file "$work/credentials.json" >/dev/null 2>"$work/server.log" &
  server=$!
  for _ in $(seq 1200); do [ -s "$work/port" ] && break; sleep 0.05; done
  [ -s "$work/port" ] || { echo "server did not start; see $work/server.log" >&2; exit 1; }
  key=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['service_key'])" "$work/credentials.json")
  warm=${WARM:-15}
  BILLING_KEY="$key" taskset -c 1 "$bin" load --target "127.0.0.1:$(cat "$work/port")" --duration $((warm + 6)) \
    --accounts 10000 --mix "$mix" --batch-size "${BATCH:-100}" --connections 4 --streams "${STREAMS:-32}" \
    >"$work/load.out" 2>&1 &
  load=$!
  sleep "$warm"
  target=(-p "$server")
  if [ "${WHERE:-loop}" = loop ]; then
    tid=$(grep -l '^billing-loop-0$' /proc/"$server"/task/*/comm | head -1 | cut -d/ -f5)
    target=(-t "$tid")
  fi
  perf stat -x, -e probe_libjemalloc:malloc -e "probe_billing:$name" "${target[@]}" -- sleep 3 2>"$work/stat" >/dev/null
  wait "$load" || true
  kill "$server"; wait "$server" 2>/dev/null || true
  python3 - "$work/stat" "$(basename "$bin")" "$mix" "${BATCH:-100}" "${WHERE:-loop}" <<'PY'
import sys
counts = {}
for line in open(sys.argv[1]):
    fields = line.strip().split(",")
    if len(fields) > 2 and fields[0].isdigit():
        counts["malloc" if "malloc" in fields[2] else "calls"] = int(fields[0])
mallocs, calls = counts.get("malloc", 0), counts.get("calls", 0)
if not calls:
    sys.exit(f"{sys.argv[2]}: no calls counted")
per_debit = f", {mallocs / calls / int(sys.argv[4]):.1f} per debit" if sys.argv[3].startswith("batch") else ""
print(f"{sys.argv[2]}: {mallocs / calls:.1f} mallocs per call{per_debit} ({calls} calls counted; {sys.argv[5]})")
PY
  rm -rf "$work"
done
