#!/usr/bin/env bash
# Transport benchmark: h2load drives billing's grpc.health.v1.Health/Check
# (a unary gRPC call with a gRPC-framed body) and, in the same run, nghttpd
# serving a small static file: the ceiling of the HTTP/2 layer on this
# machine. The server is pinned to core 0, h2load (1 thread) to core 1.
#
# Usage: scripts/bench-transport.sh [requests] [connections] [streams]
# Prints both figures and their ratio. Loopback only; bounded by the count.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-500000}
connections=${2:-4}
streams=${3:-32}
bin="${BILLING_BIN:-$(swift build -c release --show-bin-path)/billing}"
[ -x "$bin" ] || swift build -c release --product billing
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

printf '\x00\x00\x00\x00\x00' > "$work/health-request.bin"   # empty HealthCheckRequest, framed
mkdir -p "$work/www" && printf 'ok' > "$work/www/ok"

run_h2load() {  # name, url, extra args...
  # Throughput: h2load as is. Latency: a second run with --log-file (writing a
  # line per request slows h2load itself, so its throughput is not reported).
  local name=$1 url=$2; shift 2
  # Warm-up (connections, allocator, caches), not measured.
  taskset -c 1 h2load -n 50000 -c "$connections" -m "$streams" -t 1 "$@" "$url" >/dev/null 2>&1
  taskset -c 1 h2load -n "$requests" -c "$connections" -m "$streams" -t 1 "$@" "$url" 2>&1 |
    grep -E "^finished in|^requests:|^status codes:|^traffic:|^time for request:"
  taskset -c 1 h2load -n "$requests" -c "$connections" -m "$streams" -t 1 --log-file "$work/$name.log" "$@" "$url" >/dev/null 2>&1
  # Latency percentiles from h2load's per-request log (third column: microseconds).
  python3 - "$work/$name.log" <<'PY'
import sys
d = sorted(int(line.split()[2]) for line in open(sys.argv[1]) if line.strip())
pick = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000
print(f"latency ms: p50 {pick(0.50):.2f}  p90 {pick(0.90):.2f}  p99 {pick(0.99):.2f}  p99.9 {pick(0.999):.2f}  max {d[-1]/1000:.2f}")
PY
}

# h2load prints "finished in 1.2s" or "finished in 726.12ms"; req/s is the 4th field either way.
rate() { sed -n 's/^finished in [0-9.]*m\{0,1\}s, \([0-9.]*\) req\/s.*/\1/p'; }

echo "== billing: grpc.health.v1.Health/Check, $requests calls, $connections connections x $streams streams"
taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --port-file "$work/port" --threads 1 --log-level warning \
  --db "$work/bench.sqlite" >"$work/server.log" 2>&1 &
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
billing_out=$(run_h2load billing "http://127.0.0.1:$port/grpc.health.v1.Health/Check" -d "$work/health-request.bin" \
  -H 'content-type: application/grpc' -H 'te: trailers')
echo "$billing_out"
# Each reply must carry the 7-byte framed HealthCheckResponse{SERVING}: h2load counts gRPC errors as 2xx.
echo "check: response DATA bytes $(echo "$billing_out" | grep -o '[0-9.]*[KMG]*B ([0-9]*) data' || true), expected $((requests * 7))"
kill %1 2>/dev/null || true; wait 2>/dev/null || true

echo "== nghttpd: GET of a 2-byte static file, same load"
nghttp_port=$((20000 + RANDOM % 20000))
taskset -c 0 nghttpd --no-tls -d "$work/www" "$nghttp_port" >/dev/null 2>&1 &
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$nghttp_port) 2>/dev/null && break; sleep 0.05; done
nghttpd_out=$(run_h2load nghttpd "http://127.0.0.1:$nghttp_port/ok")
echo "$nghttpd_out"

billing_rps=$(echo "$billing_out" | rate)
nghttpd_rps=$(echo "$nghttpd_out" | rate)
echo "== summary: billing ${billing_rps} calls/s, nghttpd ${nghttpd_rps} req/s, ratio $(python3 -c "print(f'{$billing_rps/$nghttpd_rps:.2f}')")"
