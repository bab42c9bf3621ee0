#!/usr/bin/env bash
# Where the server's CPU goes under one metering method: the release server
# pinned to core 0 (one event loop), `billing load` on core 1 (4 connections
# x STREAMS streams, 10,000 accounts, unique keys), and `perf record -g` of
# the server for PERF_SECONDS once the load has warmed up. Prints the share
# of the samples per thread, then per stage (the first of a list of frames
# found in a sample's call chain, checked in order), then the top leaf
# functions. `perf report`'s "children" percentages are not used: with these
# call chains (Swift and SQLite without frame pointers) they add up to more
# than 100 %. Needs root (or perf_event_paranoid <= 1) and perf.
#
# Usage: scripts/bench-profile.sh MIX [load-seconds]   (MIX: debit:1, batch:1, quote:1, ...)
# Environment: STREAMS (32), PERF_SECONDS (6), SAMPLES_OUT (a file to keep perf script's samples in), WARM (4: seconds of the timed load before recording;
# WARM + PERF_SECONDS must stay under the load's seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
mix=$1
seconds=${2:-20}
command -v perf >/dev/null || { echo "perf not found (Debian: linux-perf)" >&2; exit 1; }
source scripts/bench-common.sh

start_server "$work/server.log" warning
BILLING_KEY="$key" taskset -c 1 "$bin" load --target "127.0.0.1:$(cat "$work/port")" --duration "$seconds" \
  --accounts 10000 --mix "$mix" --batch-size 100 --connections 4 --streams "${STREAMS:-32}" >"$work/load.out" 2>"$work/load.err" &
load=$!
# Accounts are provisioned first: wait for the timed phase's first progress line, then warm.
for _ in $(seq 600); do grep -q "^progress:" "$work/load.err" 2>/dev/null && break; sleep 0.1; done
sleep "${WARM:-4}"
perf record -F 1999 -g -p "$server" -o "$work/perf.data" -- sleep "${PERF_SECONDS:-6}" >/dev/null 2>&1
wait "$load" || true
sed -n '1,2p' "$work/load.out"
perf script -i "$work/perf.data" -F comm,ip,sym 2>/dev/null >"$work/samples.txt"
[ -z "${SAMPLES_OUT:-}" ] || cp "$work/samples.txt" "$SAMPLES_OUT"
python3 - "$work/samples.txt" <<'PY'
import collections, sys
# (stage, a substring of a frame's symbol): the first that a sample's chain holds names its stage.
STAGES = [
    ("checkpoint: encoding", "encodedCheckpoint"), ("checkpoint: writing", "runCheckpoints"),
    ("index rows", "GroupCommitterC5write"), ("journal: encoding", "JournalEncoding"),
    ("ledger: DebitBatch", "recordBatch"), ("ledger: unary debit", "debitNow"),
    ("request: DebitBatch decode", "DebitBatchRequest"), ("request: validate, price, fingerprint", "commandOrUnpriceable"),
    ("request: authenticate, decode, authorize", "SecuredRouterV5admit"), ("http2: receive", "nghttp2_session_mem_recv"),
    ("http2: send", "nghttp2_session_mem_send"), ("sqlite", "sqlite3"), ("fsync", "fdatasync"),
    ("pwrite", "pwrite"), ("socket read", "__libc_read"), ("socket write", "__send"), ("epoll", "epoll_wait"),
]
threads, stages, leaves = collections.Counter(), collections.Counter(), collections.Counter()
total = 0
for sample in open(sys.argv[1]).read().split("\n\n"):
    lines = sample.strip().split("\n")
    if not lines or not lines[0].strip():
        continue
    total += 1
    thread = lines[0].split()[0]
    threads[thread] += 1
    frames = [l.split(None, 1)[1] if len(l.split(None, 1)) > 1 else "?" for l in lines[1:]]
    stage = next((name for name, frame in STAGES if any(frame in f for f in frames)), "other")
    stages[(thread, stage)] += 1
    leaves[frames[0][:100] if frames else "?"] += 1
print(f"{total} samples")
print("== by thread")
for name, n in threads.most_common():
    print(f"{100 * n / total:6.1f} %  {name}")
print("== by thread and stage")
for (thread, stage), n in stages.most_common(25):
    print(f"{100 * n / total:6.1f} %  {thread}: {stage}")
print("== leaf functions")
for name, n in leaves.most_common(15):
    print(f"{100 * n / total:6.1f} %  {name}")
PY
