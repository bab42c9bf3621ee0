# Sourced by the metering benchmarks (from the repository root): the release
# binary ($bin, built if missing; BILLING_BIN overrides), a work directory
# ($work) removed on exit with every background job, and start_server.
bin="${BILLING_BIN:-$(swift build -c release --show-bin-path)/billing}"
[ -x "$bin" ] || swift build -c release --product billing
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# start_server LOG LEVEL [serve options...]: the server on core 0 with one
# event loop, on $work/db.sqlite; waits for its port. Sets $server (its pid)
# and $key (the demo service key).
start_server() {
  local log=$1 level=$2
  shift 2
  rm -f "$work/port"
  taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --port-file "$work/port" --threads 1 --log-level "$level" \
    --db "$work/db.sqlite" --demo-credentials-file "$work/credentials.json" "$@" >/dev/null 2>"$log" &
  server=$!
  for _ in $(seq 1200); do [ -s "$work/port" ] && break; sleep 0.05; done
  [ -s "$work/port" ] || { echo "server did not start; see $log" >&2; exit 1; }
  key=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['service_key'])" "$work/credentials.json")
}
