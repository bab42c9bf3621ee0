#!/usr/bin/env bash
# Interleaved A/B of two or more `billing` binaries on one metering method:
# each round runs every binary once on a fresh server (pinned to core 0, one
# event loop, a fresh database) with `billing load` on core 1 (4 connections
# x 32 streams, unique keys, ACCOUNTS Pro accounts), and prints its calls/s
# and the server's CPU microseconds per call over the timed part (read from
# /proc/PID/stat: steadier than calls/s on a machine whose speed drifts, which
# is why the runs interleave). Copy each build's binary aside first
# (`cp .build/release/billing /some/path/billing-a`).
#
# Usage: scripts/bench-ab.sh MIX ROUNDS BINARY...   (MIX: debit:1, quote:1, batch:1, ...)
# Environment: SECONDS_PER_RUN (12), ACCOUNTS (10000), BATCH (100), STREAMS (32),
# SERVE_ARGS (more `billing serve` options, e.g. "--checkpoint-every 200000"),
# LOAD_BIN (the `billing` whose `load` drives every run; default: each binary's
# own — set it when the builds' load generators differ, as for `cost:1` across
# session 14; paths are relative to the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
mix=$1; rounds=$2; shift 2
seconds=${SECONDS_PER_RUN:-12}

one_run() {  # binary: prints "name calls/s us-per-call busy%"
  local bin=$1 work
  work=$(mktemp -d)
  # shellcheck disable=SC2086 # SERVE_ARGS is a list of words
  taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --port-file "$work/port" --threads 1 --log-level warning \
    --db "$work/db.sqlite" --demo-credentials-file "$work/credentials.json" ${SERVE_ARGS:-} >/dev/null 2>"$work/server.log" &
  local server=$!
  for _ in $(seq 1200); do [ -s "$work/port" ] && break; sleep 0.05; done
  [ -s "$work/port" ] || { echo "server did not start; see $work/server.log" >&2; kill "$server" 2>/dev/null; return 1; }
  local key
  key=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['service_key'])" "$work/credentials.json")
  BILLING_KEY="$key" taskset -c 1 "${LOAD_BIN:-$bin}" load --target "127.0.0.1:$(cat "$work/port")" --duration "$seconds" \
    --accounts "${ACCOUNTS:-10000}" --mix "$mix" --batch-size "${BATCH:-100}" --connections 4 --streams "${STREAMS:-32}" \
    >"$work/load.out" 2>/dev/null &
  local load=$!
  # The server's CPU ticks every 0.2 s while the load runs (bounded by the load's own time bound).
  while kill -0 "$load" 2>/dev/null; do
    echo "$(date +%s%N) $(awk '{print $14, $15}' "/proc/$server/stat")"
    sleep 0.2
  done >"$work/cpu"
  wait "$load" || true
  kill "$server"; wait "$server" 2>/dev/null || true
  python3 - "$work/cpu" "$work/load.out" "$(getconf CLK_TCK)" "$(basename "$bin")" <<'PY'
import re, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
out = open(sys.argv[2]).read()
m = re.search(r"(\d+) calls in ([\d.]+) s = (\d+) calls/s", out)
if not m or len(rows) < 2:
    sys.exit(f"{sys.argv[4]}: no result (load output: {out[-300:]!r})")
calls, secs, rate = int(m.group(1)), float(m.group(2)), int(m.group(3))
end = rows[-1]
start = min(rows, key=lambda r: abs(r[0] - (end[0] - secs * 1e9)))
tick, wall = int(sys.argv[3]), (end[0] - start[0]) / 1e9
user, system = (end[1] - start[1]) / tick, (end[2] - start[2]) / tick
cpu = user + system
print(f"{sys.argv[4]}: {rate} calls/s, server {1e6 * cpu / wall * secs / calls:.1f} us CPU per call"
      f" ({100 * system / cpu if cpu else 0:.0f}% in the kernel), {100 * cpu / wall:.0f}% busy")
PY
  rm -rf "$work"
}

for round in $(seq "$rounds"); do
  echo "== round $round of $rounds ($mix, $seconds s per run)"
  for bin in "$@"; do one_run "$bin"; done
done
