#!/usr/bin/env bash
# How long one large GetUsage holds up other accounts' debits: the release
# server pinned to core 0 (one event loop, on a test clock), a Python grpcio
# client on core 1. One account is given CELLS usage cells over DAYS days
# (each day 100 agents x CELLS/DAYS/100 tool integrations, DebitBatch calls
# of up to 256 line items; Admin AdvanceClock moves a day on), then a
# thread sends unary Debits to 100 other accounts, one at a time, while the
# main thread asks GetUsage of the large account's whole range ROUNDS times
# (no grouping: a one-bucket answer, so the time is the ledger's reading of
# the cells). Prints GetUsage latencies and the debits' latencies during
# the reads (max, p99), and a baseline of the same debits without reads.
#
# Usage: scripts/bench-usage-stall.sh [CELLS] [ROUNDS] [DAYS]   (defaults 1200000, 10, 120)
set -euo pipefail
cd "$(dirname "$0")/.."
cells=${1:-1200000}
rounds=${2:-10}
days=${3:-120}
source scripts/bench-common.sh
start_server "$work/server.log" warning --test-clock
BILLING_KEY="$key" taskset -c 1 python3 - "$work" "$(cat "$work/port")" "$cells" "$rounds" "$days" <<'PY'
import os, statistics, sys, threading, time
from pathlib import Path
work, port, cells, rounds, days = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, "scripts")
import bench_client
bench_client.stubs(work)
from billing.v1 import accounts_pb2, accounts_pb2_grpc, admin_pb2, admin_pb2_grpc, common_pb2, metering_pb2, metering_pb2_grpc
from billing.v1 import payments_pb2, payments_pb2_grpc

channel, metadata = bench_client.channel(port)
accounts = accounts_pb2_grpc.AccountsStub(channel)
admin = admin_pb2_grpc.AdminStub(channel)
metering = metering_pb2_grpc.MeteringStub(channel)
payments = payments_pb2_grpc.PaymentsStub(channel)

def account(name):
    accounts.CreateAccount(accounts_pb2.CreateAccountRequest(account_id=name, initial_plan=accounts_pb2.PLAN_PRO),
                           metadata=metadata, timeout=30)
    admin.GrantCredits(admin_pb2.GrantCreditsRequest(account_id=name, amount_micros=10**15, reason="bench",
                                                     idempotency_key=f"g-{name}"), metadata=metadata, timeout=30)

def tool(name):
    return common_pb2.LineItem(tool_call=common_pb2.ToolCallUsage(integration=name, calls=1))

account("big")  # a card on file: billed each period, never paused over the days seeded
payments.SetPaymentMethod(payments_pb2.SetPaymentMethodRequest(account_id="big", payment_method=payments_pb2.PaymentMethodInput(
    card=payments_pb2.CardInput(number="4242424242424242", exp_month=12, exp_year=2099, holder_name="Bench"))),
    metadata=metadata, timeout=30)
started = time.monotonic()
per_agent = max(cells // days // 100, 1)
for day in range(days):
    debits = []
    for agent in range(100):
        for first in range(0, per_agent, 256):
            items = [tool(f"integration-{i}") for i in range(first, min(first + 256, per_agent))]
            debits.append(metering_pb2.DebitRequest(account_id="big", workspace_id="w", agent_id=f"agent-{agent}",
                                                    run_id=f"r{day}-{agent}", idempotency_key=f"seed-{day}-{agent}-{first}",
                                                    line_items=items))
    for first in range(0, len(debits), 64):
        results = metering.DebitBatch(metering_pb2.DebitBatchRequest(debits=debits[first:first + 64]), metadata=metadata,
                                      timeout=300).results
        assert all(r.WhichOneof("outcome") == "accepted" for r in results), [r for r in results if r.WhichOneof("outcome") != "accepted"][:1]
    admin.AdvanceClock(admin_pb2.AdvanceClockRequest(seconds=86_400), metadata=metadata, timeout=60)
total_cells = per_agent * 100 * days
others = [f"other-{i}" for i in range(100)]  # created now: in trial, with credits, at the clock's day
for name in others:
    account(name)
print(f"seeded {total_cells:,} cells over {days} days in {time.monotonic() - started:.1f} s")

def debit_latencies(stop, out):
    n = 0
    while not stop.is_set():
        name = others[n % len(others)]
        t = time.monotonic()
        metering.Debit(metering_pb2.DebitRequest(account_id=name, workspace_id="w", agent_id="a", run_id="r",
                                                 idempotency_key=f"k-{time.monotonic_ns()}-{n}", line_items=[tool("slack")]),
                       metadata=metadata, timeout=30)
        out.append(time.monotonic() - t)
        n += 1

def measure(read):
    stop, latencies = threading.Event(), []
    worker = threading.Thread(target=debit_latencies, args=(stop, latencies))
    worker.start()
    time.sleep(0.5)
    reads = []
    for _ in range(rounds):
        t = time.monotonic()
        if read:
            answer = metering.GetUsage(metering_pb2.GetUsageRequest(account_id="big"), metadata=metadata, timeout=120)
            assert answer.total_micros > 0
        else:
            time.sleep(0.2)
        reads.append(time.monotonic() - t)
    stop.set()
    worker.join()
    return reads, sorted(latencies)

def ms(x):
    return f"{x * 1000:.1f} ms"

for label, read in (("without GetUsage", False), ("during GetUsage", True)):
    reads, latencies = measure(read)
    p99 = latencies[int(len(latencies) * 0.99)]
    line = f"{label}: {len(latencies)} debits, p50 {ms(statistics.median(latencies))}, p99 {ms(p99)}, max {ms(latencies[-1])}"
    if read:
        line += f"; GetUsage of {total_cells:,} cells: median {ms(statistics.median(reads))}, max {ms(max(reads))}"
    print(line)
PY
