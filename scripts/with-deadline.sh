#!/usr/bin/env bash
# with-deadline.sh SECONDS COMMAND [ARG...]
#
# Runs COMMAND; if it is still running after SECONDS, prints every thread's
# stack of each process it started (with gdb, when installed) and kills the
# lot, exiting 124. A test run that hangs then fails CI with the stacks that
# show where, instead of stalling it until someone notices.
set -uo pipefail
if [ $# -lt 2 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: with-deadline.sh SECONDS COMMAND [ARG...]" >&2
  exit 64
fi
limit=$1
shift

# Its own process group, so that the kill reaches whatever it started.
setsid "$@" &
child=$!
trap 'kill -TERM -- -"$child" 2>/dev/null' INT TERM

started=$SECONDS
while kill -0 "$child" 2>/dev/null; do
  if (( SECONDS - started >= limit )); then
    echo "with-deadline: '$*' still running after ${limit} s: stacks, then killed" >&2
    # Its process group and every descendant (swift test starts the test
    # binary in a group of its own).
    descendants() { local p; for p in $(pgrep -P "$1"); do echo "$p"; descendants "$p"; done; }
    pids=$( { pgrep -g "$child"; descendants "$child"; } | sort -un)
    for pid in $pids; do
      echo "--- process $pid: $(tr '\0' ' ' < /proc/"$pid"/cmdline 2>/dev/null | cut -c1-200)" >&2
      if command -v gdb >/dev/null; then
        timeout 120 gdb -p "$pid" -batch -nx -ex "thread apply all bt" 2>&1 \
          | grep -E '^(Thread|#)' >&2 || true
      fi
    done
    kill -KILL -- -"$child" $pids 2>/dev/null
    wait "$child" 2>/dev/null
    exit 124
  fi
  sleep 1
done
wait "$child"
