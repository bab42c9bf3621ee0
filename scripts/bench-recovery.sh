#!/usr/bin/env bash
# Recovery after many journaled debits: loads N debits through DebitBatch
# (1,000 per call) into a fresh database, then kills the server with
# SIGKILL under load (3 s into a further load of the same kind), and
# measures the next start-up: the ledger's recovery (recovery_ms, books_ms,
# key_filter_ms from the log), the whole start until the port is bound
# (process start, SQLite's own recovery, migrations, catalog, recovery,
# catch-up) and peak RSS (/usr/bin/time). Then UNCHECKPOINTED (299,000)
# more debits with checkpoints off, SIGKILL, a start-up replaying them and
# what followed the newest checkpoint: the journal paces itself at two
# checkpoint intervals of lag (200,000 entries at the default), and pacing
# slows commits without stopping them, so a kill while paced leaves about
# that much to replay, or more (the lag can grow while a checkpoint is
# written; ~300,000 was seen): a replay of that size, measured. Then `billing verify`
# (time, peak RSS). Server on core 0, load on core 1.
# COLD=1 (as root) drops the page cache before each measured start-up.
#
# Usage: scripts/bench-recovery.sh [debits] [accounts]   (default 10000000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
debits=${1:-10000000}
accounts=${2:-1000}
source scripts/bench-common.sh

load() {  # calls of 1,000 debits
  BILLING_KEY="$key" taskset -c 1 "$bin" load --target "127.0.0.1:$(cat "$work/port")" --mix batch:1 --batch-size 1000 \
    --requests "$1" --duration 3600 --accounts "$accounts" --connections 4 --streams 8 2>/dev/null | sed -n '1p'
}
cold() { if [ "${COLD:-}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi; }
measure() {  # label: a start-up after SIGKILL, with its recovery figures and peak RSS
  cold
  rm -f "$work/port"
  /usr/bin/time -v taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --port-file "$work/port" --threads 1 --log-level info \
    --db "$work/db.sqlite" --demo-credentials-file "$work/credentials.json" >/dev/null 2>"$work/measure.log" &
  local timed=$!
  local launched; launched=$(date +%s%N)
  for _ in $(seq 12000); do [ -s "$work/port" ] && break; sleep 0.005; done
  local serving=$(( ($(date +%s%N) - launched) / 1000000 ))
  [ -s "$work/port" ] || { echo "the server did not start after the kill; its log:" >&2; tail -20 "$work/measure.log" >&2; exit 1; }
  pkill -TERM -f "^$bin serve" || true
  wait "$timed" || true
  echo "== $1"
  echo "  serving (port bound) ${serving} ms after the process was started"
  sed -n 's/.*\(books_ms=[0-9]*\).*\(key_filter=[^=]*\) \(key_filter_ms=[0-9]*\) \(recovery_ms=[0-9]*\) \(replayed_entries=[0-9]*\) \(seq=[0-9]*\).*/  \4 \1 \3 \5 \6 \2/p' "$work/measure.log"
  sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\)/  peak RSS \1 kB/p' "$work/measure.log"
}

echo "== loading $debits debits over $accounts accounts (DebitBatch of 1,000)"
start_server "$work/load.log" info
started=$(date +%s)
load $(( (debits + 999) / 1000 ))
echo "  $(( $(date +%s) - started )) s; database $(du -h "$work/db.sqlite" | cut -f1)"
# Killed under load: 3 s into more of the same, once its accounts exist
# (its first progress line; its calls then fail).
BILLING_KEY="$key" taskset -c 1 "$bin" load --target "127.0.0.1:$(cat "$work/port")" --mix batch:1 --batch-size 1000 \
  --duration 30 --accounts "$accounts" --connections 4 --streams 8 >/dev/null 2>"$work/under-load.err" &
under_load=$!
for _ in $(seq 600); do grep -q "^progress:" "$work/under-load.err" 2>/dev/null && break; sleep 0.1; done
grep -q "^progress:" "$work/under-load.err" || { echo "the load to kill under never started; see $work/under-load.err" >&2; exit 1; }
sleep 3
kill -9 "$server"; wait "$server" 2>/dev/null || true
wait "$under_load" 2>/dev/null || true
# The newest checkpoint: its size, and how long building and writing it took.
python3 - "$work/db.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
seq, size = db.execute("""SELECT c.seq, length(c.state) + coalesce((SELECT sum(length(p.bytes)) FROM checkpoint_parts p
                              WHERE p.seq = c.seq), 0) FROM checkpoints c ORDER BY c.seq DESC LIMIT 1""").fetchone() or (0, 0)
print(f"  newest checkpoint: seq {seq}, {size / 1e6:.1f} MB")
PY
{ grep "checkpoint written" "$work/load.log" || true; } | tail -1 | sed -n 's/.*\(build_ms=[0-9]*\).*\(cpu_ms=[0-9]*\).*\(write_ms=[0-9]*\).*/  its \1 \3 \2 (the checkpoint thread'"'"'s CPU)/p'
echo "  checkpoints written: $(grep -c "checkpoint written" "$work/load.log"); key filters stored: $(grep -c "key filter stored" "$work/load.log"); paced: $(grep -c "slowing commits" "$work/load.log") times"
{ grep "key filter stored" "$work/load.log" || true; } | tail -1 | sed -n 's/.*\(cpu_ms=[0-9]*\).*\(seq=[0-9]*\).*\(write_ms=[0-9]*\).*/  newest key filter: \2 \3 \1/p'
measure "start-up after SIGKILL under load (replays what followed the newest checkpoint)"

uncheckpointed=${UNCHECKPOINTED:-299000}
start_server "$work/worst.log" info --checkpoint-every 100000000
load $(( (uncheckpointed + 999) / 1000 )) >/dev/null
kill -9 "$server"; wait "$server" 2>/dev/null || true
measure "$uncheckpointed more debits with checkpoints off (about what a kill while paced leaves), SIGKILL"

cold
echo "== billing verify"
/usr/bin/time -v "$bin" verify --db "$work/db.sqlite" 2>"$work/verify.log" | tail -1
sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): \(.*\)/  \1 wall/p; s/.*Maximum resident set size (kbytes): \([0-9]*\)/  peak RSS \1 kB/p' "$work/verify.log"
