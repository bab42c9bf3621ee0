#!/usr/bin/env bash
# How long paging through one long run's cost takes: the release server
# pinned to core 0 (one event loop), a Python grpcio client on core 1. One
# account's run is given DEBITS debits (DebitBatch calls of 1,000), then
# GetExecutionCost pages through it (page_size 1,000), ROUNDS times; prints
# the time per pass and per page, and the server's CPU per pass. With
# checkpoints every CHECKPOINT_EVERY entries (default 10,000) most of the run
# is read from SQLite's run index, the rest from memory.
#
# Usage: scripts/bench-run-pages.sh [DEBITS] [ROUNDS]   (defaults 50000, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
debits=${1:-50000}
rounds=${2:-3}
source scripts/bench-common.sh
start_server "$work/server.log" warning --checkpoint-every "${CHECKPOINT_EVERY:-10000}"
BILLING_KEY="$key" SERVER_PID="$server" taskset -c 1 python3 - "$work" "$(cat "$work/port")" "$debits" "$rounds" <<'PY'
import os, sys, time
from pathlib import Path
work, port, debits, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, "scripts")
import bench_client
bench_client.stubs(work)
from billing.v1 import accounts_pb2, accounts_pb2_grpc, admin_pb2, admin_pb2_grpc, common_pb2, metering_pb2, metering_pb2_grpc

channel, metadata = bench_client.channel(port)
accounts_pb2_grpc.AccountsStub(channel).CreateAccount(
    accounts_pb2.CreateAccountRequest(account_id="long", initial_plan=accounts_pb2.PLAN_PRO), metadata=metadata, timeout=30)
admin_pb2_grpc.AdminStub(channel).GrantCredits(admin_pb2.GrantCreditsRequest(
    account_id="long", amount_micros=10**15, reason="bench", idempotency_key="g"), metadata=metadata, timeout=30)
metering = metering_pb2_grpc.MeteringStub(channel)
item = common_pb2.LineItem(tool_call=common_pb2.ToolCallUsage(integration="slack", calls=1))
for first in range(0, debits, 1000):
    batch = [metering_pb2.DebitRequest(account_id="long", workspace_id="w", agent_id="a", run_id="the-run",
                                       idempotency_key=f"k{i}", line_items=[item]) for i in range(first, min(first + 1000, debits))]
    results = metering.DebitBatch(metering_pb2.DebitBatchRequest(debits=batch), metadata=metadata, timeout=120).results
    assert all(r.WhichOneof("outcome") == "accepted" for r in results)

def cpu_seconds():
    fields = open(f"/proc/{os.environ['SERVER_PID']}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

for round in range(rounds):
    started, cpu, token, pages, seen = time.monotonic(), cpu_seconds(), "", 0, 0
    while True:
        page = metering.GetExecutionCost(metering_pb2.GetExecutionCostRequest(
            account_id="long", run_id="the-run", page_size=1000, page_token=token), metadata=metadata, timeout=120)
        assert page.debit_count == debits
        pages, seen, token = pages + 1, seen + len(page.debits), page.next_page_token
        if not token:
            break
    elapsed, cpu = time.monotonic() - started, cpu_seconds() - cpu
    assert seen == debits
    print(f"round {round + 1}: {pages} pages of a {debits:,}-debit run in {elapsed * 1000:.0f} ms "
          f"({elapsed * 1000 / pages:.1f} ms a page), server CPU {cpu * 1000:.0f} ms")
PY
