"""The real crash test: `billing serve` under concurrent Debit load from many
grpcio threads is killed with SIGKILL at a random moment, restarted on the
same database, and then:

- every debit a client saw acknowledged is found by GetDebit, ACCEPTED, with
  the very response it was acknowledged with (entry id, amounts, balance);
- every refusal a client saw is found REFUSED with the same reason;
- every debit attempted but not acknowledged is ACCEPTED once, REFUSED or
  UNKNOWN, and a retry with its key after the restart settles it once;
- no entry id answers for two keys; per account, balance + the credits drawn by
  every ACCEPTED debit == the credits granted, usage == the sum of the debits,
  and each run's execution cost lists exactly its ACCEPTED debits;
- `billing verify --db` is clean.

The kill/restart cycle runs CYCLES times on the same database. The moment of
each kill (a number of acknowledgements) and every request come from a seeded
random.Random; the seed is in every assertion message. Rerun one with
BILLING_CRASH_SEED=<seed>.
"""

import concurrent.futures
import json
import os
import random
import re
import signal
import threading
import time
from dataclasses import dataclass, field

import grpc

from conftest import ROOT, RPC_TIMEOUT_S

SEED = int(os.environ.get("BILLING_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
CATALOG = json.loads((ROOT / "config" / "catalog.json").read_text())

ACCOUNTS = 20
THREADS = 16
CHANNELS = 4
CYCLES = 3
DEBITS_PER_CYCLE = 3_000          # attempts at most, per cycle
KILL_AFTER_ACKS = (300, 1_200)    # the kill comes after a random number of acknowledged debits in this range
LOAD_TIMEOUT_S = 20.0             # per cycle: the acks must come by then
RUNS_PER_ACCOUNT = 12
DEBIT_TIMEOUT_S = 10.0
CHECKPOINT_EVERY = 400            # so that recovery is a checkpoint plus a replay
RETRIES_AFTER_RESTART = 200       # acknowledged debits retried with their keys after each restart


@dataclass
class Attempt:
    account: str
    key: str
    run: str
    request: object
    expected_total: int
    acked: object = None          # the DebitResponse a client got
    refused: str | None = None    # the reason of a refusal a client got
    errors: list = field(default_factory=list)  # statuses of calls that settled nothing


# What a call cut short by the kill may end with; any other error is a
# problem the test reports (an ALREADY_EXISTS for the same call retried, an
# INTERNAL before the kill...).
KILLED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
          grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN)


def half_up(numerator, unit):
    q, r = divmod(numerator, unit)
    return q + (1 if 2 * r >= unit else 0)


def error_reason(pb, error):
    """ErrorInfo.reason of a failed call, None without one."""
    raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    if raw is None:
        return None
    status = pb.status_pb2.Status.FromString(raw)
    info = pb.error_details_pb2.ErrorInfo()
    return info.reason if status.details and status.details[0].Unpack(info) else None


def unexpected_error(pb, error, killed) -> str | None:
    """Why a call's error is a problem, or None when the kill explains it.
    A call cut short by the kill ends with what the dead connection gives
    (UNAVAILABLE, CANCELLED, UNKNOWN: no ErrorInfo, the server wrote none)
    — only once `killed` is set; DEADLINE_EXCEEDED (a slow moment under
    load, settled like a killed call) at any time. Anything else — one of
    those before the kill, or carrying the server's reason (LEDGER_UNAVAILABLE,
    an INTERNAL) — is a failure the settling after the restart would hide."""
    code = error.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return None
    if code not in KILLED:
        return f"{code} {error.details()}"
    if not killed.is_set():
        return f"{code} {error.details()} before the kill"
    reason = error_reason(pb, error)
    if reason is not None:
        return f"{code} {reason} {error.details()}: the server's own refusal, not the kill's"
    return None


class Load:
    """Debits from THREADS threads over CHANNELS channels against one server
    until `stop` is set or the cycle's budget is spent."""

    def __init__(self, pb, served, key, rng, cycle, accounts, attempts, retries):
        self.pb = pb
        self.served = served
        self.cycle = cycle
        self.accounts = accounts
        self.attempts = attempts          # key -> Attempt, shared across cycles
        self.retries = list(retries)      # unsettled attempts of earlier cycles, retried first
        self.rng = rng
        self.stop = threading.Event()
        self.killed = threading.Event()   # set just before the SIGKILL
        self.lock = threading.Lock()
        self.budget = DEBITS_PER_CYCLE
        self.acks = 0
        self.problems = []
        channels = [served.authorized_channel(key) for _ in range(CHANNELS)]
        self.stubs = [pb.metering_pb2_grpc.MeteringStub(ch) for ch in channels]
        self.threads = [threading.Thread(target=self.worker, args=(t, rng.randrange(1 << 32)), daemon=True)
                        for t in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(deadline - time.monotonic(), 0.01))
        return [t for t in self.threads if t.is_alive()]

    def items(self, rng):
        c = self.pb.common_pb2
        items = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            if kind < 0.5:
                model = rng.choice(sorted(CATALOG["models"]))
                items.append(c.LineItem(llm=c.LlmUsage(model=model, input_tokens=rng.randrange(5_000),
                                                       output_tokens=rng.randrange(2_000))))
            elif kind < 0.8:
                integration = rng.choice(["slack", "github", "http", "gmail", "jira"])
                items.append(c.LineItem(tool_call=c.ToolCallUsage(integration=integration, calls=rng.randrange(1, 6))))
            else:
                items.append(c.LineItem(storage=c.StorageUsage(kind=rng.choice([1, 2]), bytes=rng.randrange(1 << 28))))
        return items

    @staticmethod
    def price(item):
        kind = item.WhichOneof("kind")
        if kind == "llm":
            r = CATALOG["models"][item.llm.model]
            return half_up(item.llm.input_tokens * r["input_micros_per_million_tokens"]
                           + item.llm.output_tokens * r["output_micros_per_million_tokens"], 1_000_000)
        if kind == "tool_call":
            t = CATALOG["tool_calls"]
            return item.tool_call.calls * t["micros_per_call"].get(item.tool_call.integration,
                                                                  t["default_micros_per_call"])
        rate = CATALOG["storage"]["micros_per_gib"][{1: "knowledge_base", 2: "traces"}[item.storage.kind]]
        return half_up(item.storage.bytes * rate, 1 << 30)

    def next_attempt(self, tid, n, rng):
        with self.lock:
            if self.retries:
                return self.retries.pop()
            if self.budget <= 0:
                return None
            self.budget -= 1
        account = rng.choice(self.accounts)
        key = f"c{self.cycle}-t{tid}-{n}"
        run = f"run-{rng.randrange(RUNS_PER_ACCOUNT)}"
        items = self.items(rng)
        request = self.pb.metering_pb2.DebitRequest(
            account_id=account, workspace_id=f"ws-{rng.randrange(3)}", agent_id=f"agent-{rng.randrange(4)}",
            run_id=run, idempotency_key=key, line_items=items)
        attempt = Attempt(account, key, run, request, sum(self.price(i) for i in items))
        with self.lock:
            self.attempts[key] = attempt
        return attempt

    def worker(self, tid, seed):
        rng = random.Random(seed)
        stub = self.stubs[tid % len(self.stubs)]
        n = 0
        while not self.stop.is_set():
            attempt = self.next_attempt(tid, n, rng)
            n += 1
            if attempt is None:
                return
            # Now and then the same call twice: an idempotent retry under load.
            for _ in range(2 if rng.random() < 0.1 else 1):
                if self.stop.is_set():
                    return
                self.call(stub, attempt)

    def call(self, stub, attempt):
        try:
            response = stub.Debit(attempt.request, timeout=DEBIT_TIMEOUT_S)
        except grpc.RpcError as error:
            reason = None
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                reason = error_reason(self.pb, error)
            with self.lock:
                if reason is not None:
                    if attempt.acked is not None or (attempt.refused not in (None, reason)):
                        self.problems.append(f"{attempt.key}: refused {reason} after {attempt.acked or attempt.refused}")
                    attempt.refused = reason
                else:
                    attempt.errors.append(error.code())
                    problem = unexpected_error(self.pb, error, self.killed)
                    if problem is not None:
                        self.problems.append(f"{attempt.key}: {problem}")
            return
        with self.lock:
            if attempt.refused is not None:
                self.problems.append(f"{attempt.key}: accepted after being refused {attempt.refused}")
            elif attempt.acked is not None and attempt.acked != response:
                self.problems.append(f"{attempt.key}: acknowledged twice differently:\n{attempt.acked}\n{response}")
            elif attempt.acked is None:
                attempt.acked = response
                self.acks += 1



def create_accounts(pb, served, key, rng):
    """20 accounts: trial and Pro, generous and tight grants. Returns {id: granted}."""
    ch = served.authorized_channel(key)
    accounts = pb.accounts_pb2_grpc.AccountsStub(ch)
    admin = pb.admin_pb2_grpc.AdminStub(ch)
    granted = {}
    for i in range(ACCOUNTS):
        pro = i % 5 in (1, 3)                   # 8 Pro, 12 trial
        tight = i % 4 == 0                      # run out of credits under load
        account = f"acct-{i:02d}-{'pro' if pro else 'trial'}{'-tight' if tight else ''}"
        request = pb.accounts_pb2.CreateAccountRequest(account_id=account)
        if pro:
            request.initial_plan = pb.accounts_pb2.PLAN_PRO
        accounts.CreateAccount(request, timeout=RPC_TIMEOUT_S)
        amount = rng.randrange(20_000, 200_000) if tight else rng.randrange(500_000_000, 2_000_000_000)
        admin.GrantCredits(pb.admin_pb2.GrantCreditsRequest(account_id=account, amount_micros=amount,
                                                            reason="crash test", idempotency_key=f"g-{account}"),
                           timeout=RPC_TIMEOUT_S)
        granted[account] = amount
    return granted


def check_after_restart(pb, served, key, granted, attempts, verify, where):
    """Every invariant of the module docstring, against the restarted server.
    Returns the attempts still UNKNOWN (to retry under the next load)."""
    m = pb.metering_pb2
    stub = pb.metering_pb2_grpc.MeteringStub(served.authorized_channel(key))

    def settle(attempt):
        return attempt, stub.GetDebit(m.GetDebitRequest(account_id=attempt.account,
                                                        idempotency_key=attempt.key), timeout=RPC_TIMEOUT_S)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        settled = list(pool.map(settle, list(attempts.values())))

    accepted, unknown, problems = {}, [], []
    entry_keys = {}
    for attempt, got in settled:
        outcome = got.outcome
        if attempt.acked is not None:
            if outcome != m.DEBIT_OUTCOME_ACCEPTED or got.debit != attempt.acked:
                problems.append(f"acknowledged {attempt.key} ({attempt.account}) came back as "
                                f"{m.DebitOutcome.Name(outcome)}:\n{got}\nacknowledged:\n{attempt.acked}")
        elif attempt.refused is not None:
            if outcome != m.DEBIT_OUTCOME_REFUSED or got.refusal.reason != attempt.refused:
                problems.append(f"refusal {attempt.refused} of {attempt.key} came back as {got}")
        if outcome == m.DEBIT_OUTCOME_ACCEPTED:
            accepted[attempt.key] = (attempt, got.debit)
            if got.debit.total_micros != attempt.expected_total:
                problems.append(f"{attempt.key}: total {got.debit.total_micros} != catalog {attempt.expected_total}")
            if got.debit.entry_id in entry_keys:
                problems.append(f"entry {got.debit.entry_id} answers for {entry_keys[got.debit.entry_id]} "
                                f"and {attempt.key}")
            entry_keys[got.debit.entry_id] = attempt.key
        elif outcome == m.DEBIT_OUTCOME_UNKNOWN:
            unknown.append(attempt)
        elif outcome != m.DEBIT_OUTCOME_REFUSED:
            problems.append(f"{attempt.key}: outcome {outcome}")
    assert not problems, f"seed {SEED}, {where}: {len(problems)} problem(s):\n" + "\n".join(problems[:10])

    # Retries of settled keys after the restart (the keys are no longer in the
    # server's memory cache) get the original outcome and charge nothing.
    rng = random.Random(f"{SEED}-{where}")
    acked = sorted((a for a in attempts.values() if a.acked is not None), key=lambda a: a.key)
    refused = sorted((a for a in attempts.values() if a.refused is not None), key=lambda a: a.key)

    def retry(attempt):
        try:
            return attempt, stub.Debit(attempt.request, timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            return attempt, (error.code(), error_reason(pb, error))

    sample = rng.sample(acked, min(len(acked), RETRIES_AFTER_RESTART)) + \
        rng.sample(refused, min(len(refused), RETRIES_AFTER_RESTART // 4))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for attempt, got in pool.map(retry, sample):
            expected = attempt.acked if attempt.acked is not None else \
                (grpc.StatusCode.FAILED_PRECONDITION, attempt.refused)
            assert got == expected, f"seed {SEED}, {where}: retry of {attempt.key} got {got}, expected {expected}"

    # Balances reconcile: nothing charged twice, nothing charged that is not ACCEPTED.
    quote_item = pb.common_pb2.LineItem(tool_call=pb.common_pb2.ToolCallUsage(integration="http", calls=0))
    for account, grant in granted.items():
        mine = [(a, d) for a, d in accepted.values() if a.account == account]
        drawn = sum(d.covered_by_credits_micros for _, d in mine)
        balance = stub.Quote(m.QuoteRequest(account_id=account, line_items=[quote_item]),
                             timeout=RPC_TIMEOUT_S).balance_micros
        assert balance >= 0 and balance + drawn == grant, \
            f"seed {SEED}, {where}: {account}: balance {balance} + drawn {drawn} != granted {grant}"
        usage = stub.GetUsage(m.GetUsageRequest(account_id=account), timeout=RPC_TIMEOUT_S).total_micros
        assert usage == sum(d.total_micros for _, d in mine), \
            f"seed {SEED}, {where}: {account}: usage {usage} != sum of accepted debits"
        for run in sorted({a.run for a, _ in mine}):
            cost = stub.GetExecutionCost(m.GetExecutionCostRequest(account_id=account, run_id=run),
                                         timeout=RPC_TIMEOUT_S)
            expected = sorted((d.entry_id, a.key) for a, d in mine if a.run == run)
            assert sorted((d.entry_id, d.idempotency_key) for d in cost.debits) == expected, \
                f"seed {SEED}, {where}: {account} {run}: execution cost lists other debits than GetDebit"
            assert cost.total_micros == sum(d.total_micros for a, d in mine if a.run == run)
    verify(served.db_path)
    return unknown, len(accepted)


def kill(served, load):
    load.killed.set()
    served.terminate(signal.SIGKILL)
    load.stop.set()  # no new attempts at a dead server; the ones in flight fail
    code = served.wait_exit(10)
    assert code == -signal.SIGKILL, f"seed {SEED}: the server exited with {code} before it was killed"


def test_sigkill_under_debit_load_loses_no_acknowledged_debit(pb, server, verify):
    rng = random.Random(SEED)
    args = ["--checkpoint-every", str(CHECKPOINT_EVERY), "--log-level", "info"]
    served = server(args=args)
    db = served.db_path
    key = served.service_key()  # created on the fresh database; it outlives restarts
    granted = create_accounts(pb, served, key, rng)
    attempts: dict[str, Attempt] = {}
    unknown: list[Attempt] = []
    report = []
    started = time.monotonic()

    unacked_in_all = 0
    for cycle in range(CYCLES):
        kill_at = rng.randint(*KILL_AFTER_ACKS)
        load = Load(pb, served, key, rng, cycle, sorted(granted), attempts, unknown)
        load.start()
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while load.acks < kill_at and time.monotonic() < deadline and any(t.is_alive() for t in load.threads):
            time.sleep(0.002)
        acks_at_kill = load.acks
        assert acks_at_kill >= kill_at, \
            f"seed {SEED}, cycle {cycle}: only {acks_at_kill} of {kill_at} acknowledgements in {LOAD_TIMEOUT_S} s " \
            f"(server alive: {served.proc.poll() is None}); problems: {load.problems[:3]}"
        kill(served, load)
        alive = load.join(DEBIT_TIMEOUT_S + 5)
        assert not alive, f"seed {SEED}, cycle {cycle}: {len(alive)} load threads still running"
        assert not load.problems, f"seed {SEED}, cycle {cycle}: " + "\n".join(load.problems[:10])
        unacked = sum(1 for a in attempts.values() if a.acked is None and a.refused is None)
        unacked_in_all += unacked

        served = server(args=args, db=db)
        log = served.log()
        assert "ledger recovered" in log, f"seed {SEED}: no recovery line in the log:\n{served.log_tail()}"
        unknown, accepted = check_after_restart(pb, served, key, granted, attempts, verify, f"after kill {cycle + 1}")
        report.append(f"cycle {cycle}: kill at {acks_at_kill} acks (target {kill_at}), {len(attempts)} keys, "
                      f"{accepted} accepted, {unacked} unacknowledged, {len(unknown)} unknown")
        # The unknown ones are retried, with their keys, by the next load (or just below).

    # Debits in flight at a kill are what the unknown-outcome checks are
    # about: the kills must have caught some (load threads call back to back).
    assert unacked_in_all > 0, f"seed {SEED}: no debit was in flight at any of {CYCLES} kills: " + "; ".join(report)
    # Settle what the last kill left unknown: a retry with the same key charges once.
    stub = pb.metering_pb2_grpc.MeteringStub(served.authorized_channel(key))
    for attempt in unknown:
        try:
            attempt.acked = stub.Debit(attempt.request, timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, \
                f"seed {SEED}: retry of {attempt.key}: {error.code()} {error.details()}"
            attempt.refused = error_reason(pb, error)
    unknown, _ = check_after_restart(pb, served, key, granted, attempts, verify, "after the final retries")
    assert not unknown, f"seed {SEED}: {len(unknown)} retried keys still unknown"
    elapsed = time.monotonic() - started
    print(f"seed {SEED}, {elapsed:.1f} s\n" + "\n".join(report))


def test_run_quota_and_workspaces_survive_restarts(pb, server, verify):
    """A Free account's counted runs and its workspace come back after SIGKILL
    with no checkpoint yet (the whole journal replayed), after a graceful
    restart (its final checkpoint, nothing replayed) and after SIGKILL past
    that checkpoint (checkpoint + replay)."""
    m, c = pb.metering_pb2, pb.common_pb2
    args = ["--checkpoint-every", "100000", "--log-level", "info"]
    served = server(args=args)
    db = served.db_path
    key = served.service_key()
    ch = served.authorized_channel(key)
    pb.accounts_pb2_grpc.AccountsStub(ch).CreateAccount(
        pb.accounts_pb2.CreateAccountRequest(account_id="solo", initial_plan=pb.accounts_pb2.PLAN_FREE),
        timeout=RPC_TIMEOUT_S)
    pb.admin_pb2_grpc.AdminStub(ch).GrantCredits(pb.admin_pb2.GrantCreditsRequest(
        account_id="solo", amount_micros=1_000_000, idempotency_key="g1"), timeout=RPC_TIMEOUT_S)
    item = [c.LineItem(tool_call=c.ToolCallUsage(integration="http", calls=1))]  # 500 micros

    def debit(stub, key, run, workspace="ws-1"):
        return stub.Debit(m.DebitRequest(account_id="solo", workspace_id=workspace, agent_id="a", run_id=run,
                                         idempotency_key=key, line_items=item), timeout=RPC_TIMEOUT_S)

    def refused(stub, key, run, workspace="ws-1"):
        try:
            debit(stub, key, run, workspace)
        except grpc.RpcError as error:
            return error.code(), error_reason(pb, error)
        return "accepted"

    stub = pb.metering_pb2_grpc.MeteringStub(ch)
    results = stub.DebitBatch(m.DebitBatchRequest(debits=[
        m.DebitRequest(account_id="solo", workspace_id="ws-1", agent_id="a", run_id=f"run-{i}",
                       idempotency_key=f"k{i}", line_items=item) for i in range(200)]), timeout=60).results
    assert all(r.HasField("accepted") for r in results)
    balance = 1_000_000 - 200 * 500
    replays = []
    for n, how in enumerate(["SIGKILL", "SIGTERM", "SIGKILL"]):
        if how == "SIGTERM":
            served.terminate(signal.SIGTERM)
            assert served.wait_exit(15) == 0
        else:
            served.terminate(signal.SIGKILL)
            served.wait_exit(10)
        served = server(args=args, db=db)
        stub = pb.metering_pb2_grpc.MeteringStub(served.authorized_channel(key))
        where = f"after {how} {n}"
        replayed = re.search(r"replayed_entries=(\d+)", served.log())
        assert replayed, f"{where}: no recovery line in the log:\n{served.log_tail()}"
        replays.append(int(replayed.group(1)))
        assert refused(stub, f"over-{n}", "run-new") == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RUN_QUOTA_EXCEEDED"), where
        assert refused(stub, f"ws-{n}", "run-3", workspace="ws-2") == \
            (grpc.StatusCode.FAILED_PRECONDITION, "WORKSPACE_LIMIT"), where
        quote = stub.Quote(m.QuoteRequest(account_id="solo", line_items=item), timeout=RPC_TIMEOUT_S)
        assert quote.balance_micros == balance, where
        # Runs already counted go on.
        r = debit(stub, f"again-{n}", f"run-{n + 10}")
        balance -= 500
        assert r.balance_after_micros == balance, where
    assert replays[0] >= 202 and replays[1] == 0 and replays[2] > 0, f"entries replayed at each start: {replays}"
    verify(db)


# --------------------------------------------------------------------------
# The lifecycle under SIGKILL: purchases, upgrades and period closes


LIFECYCLE_ACCOUNTS = 8
LIFECYCLE_KILL_AFTER = (30, 120)   # acknowledged operations before the kill
LIFECYCLE_CYCLES = 2


class LifecycleLoad:
    """Purchases (unique keys), upgrades Free → Pro (a prorated invoice and
    charge each) and AdvanceClock steps of 1-9 days (period closes with their
    invoices and charges), from several threads, recording what was acknowledged."""

    def __init__(self, pb, served, key, rng, cycle, free_accounts, pro_accounts):
        self.pb, self.cycle = pb, cycle
        channel = served.authorized_channel(key)
        self.payments = pb.payments_pb2_grpc.PaymentsStub(channel)
        self.accounts = pb.accounts_pb2_grpc.AccountsStub(channel)
        self.admin = pb.admin_pb2_grpc.AdminStub(channel)
        # One generator per thread, each seeded from the test's: shared, the
        # draws would follow the threads' interleaving (no replay by seed).
        self.rngs = [random.Random(rng.randrange(1 << 32)) for _ in range(5)]
        self.free, self.pro = list(free_accounts), list(pro_accounts)
        self.purchases = {}      # key -> PurchaseCreditsResponse
        self.upgrades = {}       # account -> (key, ChangePlanResponse)
        self.clock_targets = []  # acknowledged AdvanceClock now_unix_seconds
        self.acks = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.killed = threading.Event()   # set just before the SIGKILL
        self.problems = []

    def ack(self):
        with self.lock:
            self.acks += 1

    def buy(self, index):
        p, rng = self.pb.payments_pb2, self.rngs[index]
        for n in range(10_000):
            if self.stop.is_set():
                return
            account = rng.choice(self.pro)
            key = f"c{self.cycle}-t{index}-buy-{n}"
            request = p.PurchaseCreditsRequest(account_id=account, amount_micros=rng.randint(1, 50) * 1_000_000,
                                               idempotency_key=key)
            try:
                answer = self.payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as error:
                problem = unexpected_error(self.pb, error, self.killed)
                if problem is not None:
                    self.problems.append(f"purchase {key}: {problem}")
                return
            self.purchases[key] = (request, answer)
            self.ack()

    def upgrade(self):
        a = self.pb.accounts_pb2
        for account in self.free:
            if self.stop.is_set():
                return
            key = f"up-{account}"
            try:
                answer = self.accounts.ChangePlan(a.ChangePlanRequest(account_id=account, to_plan=a.PLAN_PRO,
                                                                      idempotency_key=key), timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as error:
                problem = unexpected_error(self.pb, error, self.killed)
                if problem is not None:
                    self.problems.append(f"upgrade {key}: {problem}")
                return
            self.upgrades[account] = (key, answer)
            self.ack()

    def advance(self):
        ad, rng = self.pb.admin_pb2, self.rngs[4]
        for _ in range(1_000):
            if self.stop.is_set():
                return
            try:
                moved = self.admin.AdvanceClock(ad.AdvanceClockRequest(seconds=rng.randint(1, 9) * 86_400),
                                                timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as error:
                problem = unexpected_error(self.pb, error, self.killed)
                if problem is not None:
                    self.problems.append(f"clock advance: {problem}")
                return
            self.clock_targets.append(moved.now_unix_seconds)
            self.ack()

    def start(self):
        self.threads = [threading.Thread(target=self.buy, args=(i,), daemon=True) for i in range(3)]
        self.threads += [threading.Thread(target=self.upgrade, daemon=True), threading.Thread(target=self.advance, daemon=True)]
        for t in self.threads:
            t.start()


def test_sigkill_during_purchases_upgrades_and_period_closes(pb, server, verify):
    """Acknowledged purchases and upgrades are there exactly once after each
    restart (a retry with the key answers the same charge and charges
    nothing), a period close killed between its invoice and its charge is
    charged on start-up, and `billing verify` is clean."""
    rng = random.Random(SEED)
    args = ["--test-clock", "--checkpoint-every", "25", "--log-level", "info"]
    served = server(args=args)
    db, key = served.db_path, served.service_key()
    channel = served.authorized_channel(key)
    a, p = pb.accounts_pb2, pb.payments_pb2
    accounts = pb.accounts_pb2_grpc.AccountsStub(channel)
    payments = pb.payments_pb2_grpc.PaymentsStub(channel)
    card = p.PaymentMethodInput(card=p.CardInput(number="4242424242424242", exp_month=12, exp_year=2099))
    pro = [f"lc-pro-{i}" for i in range(LIFECYCLE_ACCOUNTS)]
    free_by_cycle = [[f"lc-free-{c}-{i}" for i in range(LIFECYCLE_ACCOUNTS)] for c in range(LIFECYCLE_CYCLES)]
    for account, plan in [(x, a.PLAN_PRO) for x in pro] + [(x, a.PLAN_FREE) for c in free_by_cycle for x in c]:
        accounts.CreateAccount(a.CreateAccountRequest(account_id=account, initial_plan=plan), timeout=RPC_TIMEOUT_S)
        payments.SetPaymentMethod(p.SetPaymentMethodRequest(account_id=account, payment_method=card), timeout=RPC_TIMEOUT_S)
    purchases, upgrades, clock_floor = {}, {}, 0

    for cycle in range(LIFECYCLE_CYCLES):
        load = LifecycleLoad(pb, served, key, rng, cycle, free_by_cycle[cycle], pro)
        kill_at = rng.randint(*LIFECYCLE_KILL_AFTER)
        load.start()
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while load.acks < kill_at and time.monotonic() < deadline and any(t.is_alive() for t in load.threads):
            time.sleep(0.002)
        acked_at_kill = load.acks
        kill(served, load)
        for t in load.threads:
            t.join(RPC_TIMEOUT_S + 5)
        assert not any(t.is_alive() for t in load.threads), f"seed {SEED}: a load thread outlived the kill"
        assert not load.problems, f"seed {SEED}: " + "\n".join(load.problems[:5])
        # The kill came under load, after the operations it was meant to follow.
        assert acked_at_kill >= kill_at, f"seed {SEED}, cycle {cycle}: killed after {acked_at_kill} of {kill_at} acks"
        assert load.purchases and load.clock_targets, \
            f"seed {SEED}, cycle {cycle}: {len(load.purchases)} purchases, {len(load.clock_targets)} clock moves"
        purchases.update(load.purchases)
        upgrades.update(load.upgrades)
        clock_floor = max([clock_floor] + load.clock_targets)

        served = server(args=args, db=db)
        channel = served.authorized_channel(key)
        accounts = pb.accounts_pb2_grpc.AccountsStub(channel)
        payments = pb.payments_pb2_grpc.PaymentsStub(channel)
        admin = pb.admin_pb2_grpc.AdminStub(channel)
        where = f"seed {SEED}, after kill {cycle + 1} (at {kill_at} acks)"
        now = admin.AdvanceClock(pb.admin_pb2.AdvanceClockRequest(seconds=0), timeout=RPC_TIMEOUT_S).now_unix_seconds
        assert now >= clock_floor, f"{where}: the test clock went back from {clock_floor} to {now}"
        charges = {}
        for account in pro + [x for c in free_by_cycle for x in c]:
            for charge in payments.ListCharges(p.ListChargesRequest(account_id=account, page_size=500),
                                               timeout=RPC_TIMEOUT_S).charges:
                assert charge.charge_id not in charges, f"{where}: charge {charge.charge_id} listed twice"
                charges[charge.charge_id] = charge
            # A period close interrupted before its charge was charged on start-up.
            for invoice in payments.ListInvoices(p.ListInvoicesRequest(account_id=account, page_size=500),
                                                 timeout=RPC_TIMEOUT_S).invoices:
                assert invoice.status == p.INVOICE_STATUS_PAID, f"{where}: {invoice.number} of {account} is {invoice.status}"
        for purchase_key, (request, answer) in purchases.items():
            assert charges.get(answer.charge.charge_id) == answer.charge, f"{where}: purchase {purchase_key} lost"
            again = payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S)
            assert again.charge == answer.charge and again.invoice.invoice_id == answer.invoice.invoice_id, \
                f"{where}: retry of {purchase_key} answered differently"
        for account, (upgrade_key, answer) in upgrades.items():
            assert accounts.GetAccount(a.GetAccountRequest(account_id=account), timeout=RPC_TIMEOUT_S).account.plan == a.PLAN_PRO
            again = accounts.ChangePlan(a.ChangePlanRequest(account_id=account, to_plan=a.PLAN_PRO, idempotency_key=upgrade_key),
                                        timeout=RPC_TIMEOUT_S)
            assert again.invoice == answer.invoice and again.charge.charge_id == answer.charge.charge_id, \
                f"{where}: retry of the upgrade of {account} answered differently"
            assert sum(1 for c in charges.values() if c.invoice_id == answer.invoice.invoice_id
                       and c.status == p.CHARGE_STATUS_SUCCEEDED) == 1, f"{where}: upgrade of {account} not charged once"
        assert len(charges) == len({c.charge_id for c in charges.values()})
        verify(db)
    # Something of each kind was acknowledged (the checks above hold for none).
    assert purchases and upgrades and clock_floor, f"seed {SEED}: {len(purchases)} purchases, {len(upgrades)} upgrades"
    print(f"seed {SEED}: {len(purchases)} purchases, {len(upgrades)} upgrades acknowledged across {LIFECYCLE_CYCLES} kills")


def test_verify_finds_a_tampered_checkpoint_and_start_up_passes_over_an_unreadable_one(pb, server, verify):
    """`billing verify` reports differences, not just "clean": a checkpoint
    whose books were changed (a balance one micro higher) differs from the
    journal replayed; a garbled one is unreadable — and the server starts all
    the same, from the checkpoint before it or the journal, with the right books."""
    import sqlite3
    from billing.journal.v1 import journal_pb2
    from conftest import billing_verify

    s = server(args=("--checkpoint-every", "5"))
    channel = s.authorized_channel()
    admin = pb.admin_pb2_grpc.AdminStub(channel)
    accounts = pb.accounts_pb2_grpc.AccountsStub(channel)
    metering = pb.metering_pb2_grpc.MeteringStub(channel)
    accounts.CreateAccount(pb.accounts_pb2.CreateAccountRequest(account_id="acme"), timeout=RPC_TIMEOUT_S)
    admin.GrantCredits(pb.admin_pb2.GrantCreditsRequest(account_id="acme", amount_micros=5_000_000, idempotency_key="g"),
                       timeout=RPC_TIMEOUT_S)
    c = pb.common_pb2
    for i in range(12):
        metering.Debit(pb.metering_pb2.DebitRequest(
            account_id="acme", workspace_id="w1", agent_id="a1", run_id=f"r{i}", idempotency_key=f"k{i}",
            line_items=[c.LineItem(tool_call=c.ToolCallUsage(integration="slack", calls=1))]), timeout=RPC_TIMEOUT_S)
    balance = accounts.GetAccount(pb.accounts_pb2.GetAccountRequest(account_id="acme"), timeout=RPC_TIMEOUT_S).account.credit_balance_micros
    s.terminate()
    assert s.wait_exit(timeout=s.drain_seconds + 30) == 0
    verify(s.db_path)

    db = sqlite3.connect(s.db_path)
    seq, state, parts = db.execute("SELECT seq, state, parts FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
    assert parts == 0, "a small checkpoint is one row"
    checkpoint = journal_pb2.Checkpoint.FromString(state)
    [acme] = [a for a in checkpoint.accounts if a.account_id == "acme"]
    acme.balance_micros += 1
    db.execute("UPDATE checkpoints SET state = ? WHERE seq = ?", (checkpoint.SerializeToString(), seq))
    db.commit()
    result = billing_verify(s.db_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "account acme: checkpoint + replay differs from the journal replayed from scratch" in result.stdout, result.stdout

    db.execute("UPDATE checkpoints SET state = x'ffffffff' WHERE seq = ?", (seq,))
    db.commit()
    db.close()
    result = billing_verify(s.db_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"unreadable checkpoint at seq {seq}" in result.stdout, result.stdout

    restarted = server(db=s.db_path, args=("--checkpoint-every", "5"))
    account = pb.accounts_pb2_grpc.AccountsStub(restarted.authorized_channel(s.service_key())).GetAccount(
        pb.accounts_pb2.GetAccountRequest(account_id="acme"), timeout=RPC_TIMEOUT_S).account
    assert account.credit_balance_micros == balance
    assert "an unreadable checkpoint was passed over" in restarted.log(), restarted.log_tail()
