#!/usr/bin/env bash
# The load generator against a stock one: `billing load` and h2load drive the
# same unary method (billing.v1.Metering/Quote) on the release server with the
# same connections and streams, one after the other, each on a fresh server
# after the same 2 s warm-up. The server is pinned to core 0 (one event loop),
# the client to core 1 (h2load: one thread). h2load sends one fixed Quote
# request on an account the warm-up provisioned; `billing load` varies agents
# and token counts over its own 100 accounts. Prints both throughputs and their
# ratio (billing load / h2load).
#
# Usage: scripts/bench-load.sh [seconds] [connections] [streams]
# Loopback only; each run is bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-4}
streams=${3:-32}
bin="${BILLING_BIN:-$(swift build -c release --show-bin-path)/billing}"
[ -x "$bin" ] || swift build -c release --product billing
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

serve() {  # a fresh server on core 0; sets server, target and key
  rm -f "$work/port" "$work/credentials.json" "$work"/bench.sqlite*
  taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --port-file "$work/port" --threads 1 --log-level warning \
    --db "$work/bench.sqlite" --demo-credentials-file "$work/credentials.json" >/dev/null 2>"$work/server.log" &
  server=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && [ -s "$work/credentials.json" ] && break; sleep 0.05; done
  [ -s "$work/port" ] || { echo "the server did not start:"; cat "$work/server.log"; exit 1; }
  target="127.0.0.1:$(cat "$work/port")"
  key=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['service_key'])" "$work/credentials.json")
}

load() {  # billing load on Quote with the given extra arguments; its summary on stdout
  BILLING_KEY="$key" taskset -c 1 "$bin" load --target "$target" --mix quote:1 --accounts 100 \
    --connections "$connections" --streams "$streams" "$@" 2>/dev/null
}

warm_up() {  # 2 s of billing load, not measured (connections, allocator, caches); prints its run id
  load --duration 2 | sed -n 's/^run \(load-[^:]*\):.*/\1/p'
}

serve
warm_up >/dev/null
echo "== billing load: Metering/Quote, $seconds s, $connections connections x $streams streams"
load_out=$(load --duration "$seconds")
echo "$load_out" | sed -n '1,2p'
echo "outcomes: $(echo "$load_out" | sed -n 's/^  \(.*\)$/\1/p' | paste -sd, -)"
kill "$server"; wait "$server" 2>/dev/null || true

serve
account="$(warm_up)-a0"
# h2load's body: a gRPC-framed QuoteRequest{account_id, workspace_id "w1", agent_id "agent-3",
# line_items [llm gpt-4o-mini 1,200 in / 300 out, tool_call slack x 1]}, the shape `billing load` sends.
python3 scripts/grpc_body.py "$work" "$account"
grpc_headers=(-H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $key")
url="http://$target/billing.v1.Metering/Quote"
# h2load counts any HTTP 200 as a success, gRPC errors included: check the request is answered OK first.
if ! nghttp -v -d "$work/quote.bin" "${grpc_headers[@]}" "$url" 2>&1 | grep -q 'grpc-status: 0$'; then
  echo "the fixed Quote request is not answered with grpc-status 0:"
  nghttp -v -d "$work/quote.bin" "${grpc_headers[@]}" "$url" 2>&1 | grep -E 'grpc-|:status' || true
  exit 1
fi

echo "== h2load: Metering/Quote, one fixed request on $account, $seconds s, same connections and streams"
h2_out=$(taskset -c 1 h2load -D "$seconds" -c "$connections" -m "$streams" -t 1 -d "$work/quote.bin" \
  "${grpc_headers[@]}" "$url" 2>&1)
echo "$h2_out" | grep -E "^finished in|^requests:|^status codes:|^traffic:"
done_calls=$(echo "$h2_out" | sed -n 's/^requests: .* \([0-9]*\) done,.*/\1/p')
data_bytes=$(echo "$h2_out" | sed -n 's/^traffic: .*(\([0-9]*\)) data$/\1/p')
# A gRPC error is a trailers-only response, no DATA; every OK Quote carries a framed QuoteResponse.
echo "check: h2load response DATA bytes per call: $(python3 -c "print(f'{$data_bytes / max(1, $done_calls):.1f}')") (0 would mean errors)"

load_rate=$(echo "$load_out" | sed -n 's/^run .* = \([0-9]*\) calls\/s$/\1/p')
# h2load prints "finished in 10.00s, 42200.30 req/s, …" (or "…ms, …").
h2_rate=$(echo "$h2_out" | sed -n 's/^finished in [0-9.]*m\{0,1\}s, \([0-9.]*\) req\/s.*/\1/p')
echo "== summary: billing load ${load_rate} calls/s, h2load ${h2_rate} calls/s," \
  "ratio billing load / h2load $(python3 -c "print(f'{$load_rate/$h2_rate:.2f}')")"
