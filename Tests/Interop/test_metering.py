"""Metering through the reference gRPC client (Python grpcio) against the real
server: pricing against config/catalog.json computed here in integer
arithmetic, idempotency, every refusal (status code, ErrorInfo reason, nothing
charged, the refusal sticks under its key), bad input, DebitBatch, GetDebit,
GetExecutionCost and GetUsage. Every server a test starts is reconciled with
`billing verify --db` when the test ends.
"""

import concurrent.futures
import datetime
import itertools
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest

from conftest import ROOT, RPC_TIMEOUT_S, billing_binary

CATALOG_PATH = ROOT / "config" / "catalog.json"
CATALOG = json.loads(CATALOG_PATH.read_text())
VERSION = CATALOG["version"]
GIB = 1 << 30
TOKENS_PER_RATE_UNIT = 1_000_000
INT64_MAX = (1 << 63) - 1
DOMAIN = "billing.v1"
# A line item's largest quantities (MeteringLimits in LineItem+Proto.swift).
MAX_TOKENS, MAX_CALLS, MAX_BYTES = 10**12, 10**9, 10**15

# The default catalog plus rates steep enough that line items within their
# quantity limits reach Int64's bounds: "steep" prices the largest tokens
# of both kinds at 8 × 10^18 micros (fits), "dear" the largest input
# tokens alone at 10^19 (does not).
STEEP_CATALOG = json.loads(CATALOG_PATH.read_text())
STEEP_CATALOG["version"] = "test-steep"
STEEP_CATALOG["models"]["steep"] = {"input_micros_per_million_tokens": 4 * 10**12,
                                    "output_micros_per_million_tokens": 4 * 10**12}
STEEP_CATALOG["models"]["dear"] = {"input_micros_per_million_tokens": 10**13, "output_micros_per_million_tokens": 0}

# google.rpc.Code numbers, as carried in Refusal.code.
INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS = 3, 5, 6
RESOURCE_EXHAUSTED, FAILED_PRECONDITION = 8, 9

DROP_TABLE = "'; DROP TABLE journal; --"


# --------------------------------------------------------------------------
# Expected prices, from the catalog file, in integer arithmetic


def half_up(numerator: int, unit: int) -> int:
    quotient, remainder = divmod(numerator, unit)
    return quotient + (1 if 2 * remainder >= unit else 0)


def expected_amount(item, catalog=CATALOG) -> int:
    kind = item.WhichOneof("kind")
    if kind == "llm":
        rates = catalog["models"][item.llm.model]
        exact = (item.llm.input_tokens * rates["input_micros_per_million_tokens"]
                 + item.llm.output_tokens * rates["output_micros_per_million_tokens"])
        return half_up(exact, TOKENS_PER_RATE_UNIT)  # input and output rounded together, once
    if kind == "tool_call":
        tools = catalog["tool_calls"]
        per_call = tools["micros_per_call"].get(item.tool_call.integration, tools.get("default_micros_per_call"))
        return item.tool_call.calls * per_call
    if kind == "storage":
        rate = catalog["storage"]["micros_per_gib"][storage_name(item.storage.kind)]
        return half_up(item.storage.bytes * rate, GIB)
    raise AssertionError(f"line item without a kind: {item}")


def storage_name(kind: int) -> str:
    return {1: "knowledge_base", 2: "traces"}[kind]


def line_key(item) -> str:
    kind = item.WhichOneof("kind")
    if kind == "llm":
        return f"llm:{item.llm.model}"
    if kind == "tool_call":
        return f"tool_call:{item.tool_call.integration}"
    return f"storage:{storage_name(item.storage.kind)}"


def quantity(item) -> int:
    kind = item.WhichOneof("kind")
    if kind == "llm":
        return item.llm.input_tokens + item.llm.output_tokens
    if kind == "tool_call":
        return item.tool_call.calls
    return item.storage.bytes


def utc_day(unix_seconds: int) -> str:
    return datetime.datetime.fromtimestamp(unix_seconds, datetime.timezone.utc).strftime("%Y-%m-%d")


# --------------------------------------------------------------------------
# The client


class Billing:
    """Stubs for one server and the helpers the tests share. Remembers every
    accepted debit (by entry id) to compute the expected usage."""

    def __init__(self, pb, served):
        self.pb = pb
        self.served = served
        channel = served.authorized_channel()  # the demo service key: every scope
        self.metering = pb.metering_pb2_grpc.MeteringStub(channel)
        self.accounts = pb.accounts_pb2_grpc.AccountsStub(channel)
        self.admin = pb.admin_pb2_grpc.AdminStub(channel)
        self.accepted = {}  # entry_id -> (DebitRequest, DebitResponse)
        self.granted = {}   # account -> micros
        self._grants = itertools.count(1)
        self._lock = threading.Lock()

    # line items

    def llm(self, model, input_tokens=0, output_tokens=0):
        c = self.pb.common_pb2
        return c.LineItem(llm=c.LlmUsage(model=model, input_tokens=input_tokens, output_tokens=output_tokens))

    def tool(self, integration, calls):
        c = self.pb.common_pb2
        return c.LineItem(tool_call=c.ToolCallUsage(integration=integration, calls=calls))

    def storage(self, kind, nbytes):
        c = self.pb.common_pb2
        kinds = {"knowledge_base": c.STORAGE_KIND_KNOWLEDGE_BASE, "traces": c.STORAGE_KIND_TRACES}
        return c.LineItem(storage=c.StorageUsage(kind=kinds.get(kind, kind), bytes=nbytes))

    # accounts

    def create(self, account_id, plan=None, credits=0):
        a = self.pb.accounts_pb2
        request = a.CreateAccountRequest(account_id=account_id, display_name=f"{account_id} test")
        if plan is not None:
            request.initial_plan = {"free": a.PLAN_FREE, "pro": a.PLAN_PRO, "enterprise": a.PLAN_ENTERPRISE}[plan]
        self.accounts.CreateAccount(request, timeout=RPC_TIMEOUT_S)
        self.granted.setdefault(account_id, 0)
        if credits:
            self.grant(account_id, credits)
        return account_id

    def grant(self, account_id, micros, key=None):
        key = key or f"grant-{next(self._grants)}"
        response = self.admin.GrantCredits(self.pb.admin_pb2.GrantCreditsRequest(
            account_id=account_id, amount_micros=micros, reason="interop test", idempotency_key=key),
            timeout=RPC_TIMEOUT_S)
        self.granted[account_id] = self.granted.get(account_id, 0) + micros
        return response

    # metering

    def request(self, account, key, items, run="r1", workspace="w1", agent="a1"):
        return self.pb.metering_pb2.DebitRequest(
            account_id=account, workspace_id=workspace, agent_id=agent, run_id=run,
            idempotency_key=key, line_items=list(items))

    def remember(self, request, response):
        with self._lock:
            known = self.accepted.get(response.entry_id)
            if known is not None:
                assert known[1] == response, f"entry {response.entry_id} answered differently:\n{known[1]}\n{response}"
            self.accepted[response.entry_id] = (request, response)

    def debit(self, account, key, items, **fields):
        request = self.request(account, key, items, **fields)
        response = self.metering.Debit(request, timeout=RPC_TIMEOUT_S)
        self.remember(request, response)
        return response

    def debit_request(self, request):
        response = self.metering.Debit(request, timeout=RPC_TIMEOUT_S)
        self.remember(request, response)
        return response

    def batch(self, requests):
        response = self.metering.DebitBatch(self.pb.metering_pb2.DebitBatchRequest(debits=list(requests)),
                                            timeout=60)
        assert len(response.results) == len(requests)
        for request, result in zip(requests, response.results):
            if result.WhichOneof("outcome") == "accepted":
                self.remember(request, result.accepted)
        return response.results

    def refusal(self, call, request):
        """The status code and ErrorInfo of a call that must fail."""
        with pytest.raises(grpc.RpcError) as info:
            response = call(request, timeout=RPC_TIMEOUT_S)
            pytest.fail(f"expected a refusal, got {response}")
        return info.value.code(), self.error_info(info.value), info.value.details()

    def refused_debit(self, request):
        return self.refusal(self.metering.Debit, request)

    def error_info(self, error):
        metadata = dict(error.trailing_metadata() or ())
        raw = metadata.get("grpc-status-details-bin")
        assert raw is not None, f"no grpc-status-details-bin in {metadata} ({error.code()} {error.details()})"
        status = self.pb.status_pb2.Status.FromString(raw)
        assert status.code == error.code().value[0], (status, error.code())
        assert status.message == error.details()
        assert len(status.details) >= 1, status
        info = self.pb.error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info), f"details[0] is not an ErrorInfo: {status.details[0].type_url}"
        assert info.domain == DOMAIN, info
        assert info.reason, info
        return info

    def quote(self, account, items, run="", workspace="", agent=""):
        return self.metering.Quote(self.pb.metering_pb2.QuoteRequest(
            account_id=account, workspace_id=workspace, agent_id=agent, run_id=run, line_items=list(items)),
            timeout=RPC_TIMEOUT_S)

    def balance(self, account):
        """Quote.balance_micros (a free quote: zero calls to a priced integration)."""
        return self.quote(account, [self.tool("http", 0)]).balance_micros

    def get_debit(self, account, key):
        return self.metering.GetDebit(self.pb.metering_pb2.GetDebitRequest(account_id=account, idempotency_key=key),
                                      timeout=RPC_TIMEOUT_S)

    def execution_cost(self, account, run):
        return self.metering.GetExecutionCost(self.pb.metering_pb2.GetExecutionCostRequest(
            account_id=account, run_id=run), timeout=RPC_TIMEOUT_S)

    def usage(self, account, group_by=(), from_unix=0, to_unix=0):
        m = self.pb.metering_pb2
        names = {"day": m.USAGE_GROUP_BY_DAY, "agent": m.USAGE_GROUP_BY_AGENT, "line_item": m.USAGE_GROUP_BY_LINE_ITEM}
        return self.metering.GetUsage(m.GetUsageRequest(
            account_id=account, from_unix_seconds=from_unix, to_unix_seconds=to_unix,
            group_by=[names.get(g, g) for g in group_by]), timeout=RPC_TIMEOUT_S)

    def usage_total(self, account):
        return self.usage(account).total_micros

    # expectations

    def debits_of(self, account):
        return sorted((r for r in self.accepted.values() if r[0].account_id == account), key=lambda r: r[1].entry_id)

    def expected_buckets(self, account, group_by):
        m = self.pb.metering_pb2
        units = {"llm": m.USAGE_UNIT_TOKENS, "tool_call": m.USAGE_UNIT_CALLS, "storage": m.USAGE_UNIT_BYTES}
        buckets = {}
        for request, response in self.debits_of(account):
            day = utc_day(response.debited_unix_seconds)
            for item, amount in zip(request.line_items, response.line_item_amounts_micros):
                key = line_key(item)
                group = (day if "day" in group_by else "",
                         request.agent_id if "agent" in group_by else "",
                         key if "line_item" in group_by else "")
                b = buckets.setdefault(group, m.UsageBucket(day=group[0], agent_id=group[1], line_item=group[2]))
                b.amount_micros += amount
                kind = item.WhichOneof("kind")
                if "line_item" in group_by:
                    b.quantity += quantity(item)
                    b.unit = units[kind]
                if kind == "llm":
                    b.input_tokens += item.llm.input_tokens
                    b.output_tokens += item.llm.output_tokens
                elif kind == "tool_call":
                    b.tool_calls += item.tool_call.calls
                else:
                    b.storage_bytes += item.storage.bytes
        return [buckets[k] for k in sorted(buckets)]

    def snapshot(self, account):
        """What a refusal must leave unchanged: balance and usage."""
        return (self.balance(account), self.usage(account, ("day", "agent", "line_item")))

    def assert_unchanged(self, account, before, what=""):
        after = self.snapshot(account)
        assert after[0] == before[0], f"{what}: balance changed from {before[0]} to {after[0]}"
        assert after[1] == before[1], f"{what}: usage changed from\n{before[1]}\nto\n{after[1]}"


@pytest.fixture
def served(server):
    return server()  # a fresh database: the demo account and its service key (every scope)


@pytest.fixture
def billing(pb, served, verify):
    client = Billing(pb, served)
    yield client
    # Reconciliation of everything the test did (read-only; the server still runs).
    verify(served.db_path)


def items_of_every_kind(b):
    """One of each kind of line item, with quantities at the rounding edges."""
    return [
        b.llm("gpt-4o", input_tokens=1234, output_tokens=567),   # 3085 + 5670 = 8755 micros exactly
        b.llm("gpt-4o-mini", input_tokens=3, output_tokens=2),   # 0.45 + 1.2 = 1.65 → 2 (1 if rounded apart)
        b.llm("gpt-4o-mini", input_tokens=10),                    # 1.5 → 2: an exact half goes up
        b.llm("claude-haiku-3.5", input_tokens=1, output_tokens=0),  # 0.8 → 1
        b.llm("gpt-4.1-mini", input_tokens=1),                    # 0.4 → 0
        b.tool("slack", 3),                                       # 3 × 1000
        b.tool("http", 7),                                        # 7 × 500
        b.tool("some-unlisted-integration", 2),                   # 2 × the default (2000)
        b.storage("knowledge_base", 1 << 24),                     # 100000 / 64 = 1562.5 → 1563
        b.storage("traces", (1 << 25) - 1),                       # just below 1562.5 → 1562
        b.storage("traces", 123_456_789),
    ]


# --------------------------------------------------------------------------
# Accepted debits, traces and usage


def test_catalog_expectations_are_what_the_comments_say(pb):
    """The test's own arithmetic, on the cases chosen for rounding."""
    b = Billing.__new__(Billing)
    b.pb = pb
    amounts = [expected_amount(i) for i in items_of_every_kind(b)]
    assert amounts[:10] == [8755, 2, 2, 1, 0, 3000, 3500, 4000, 1563, 1562]


def test_debit_prices_every_line_item_from_the_catalog(billing):
    b = billing
    grant = 50_000_000
    b.create("acme", credits=grant)
    items = items_of_every_kind(b)
    expected = [expected_amount(i) for i in items]
    total = sum(expected)

    quote = b.quote("acme", items, run="r1", workspace="w1", agent="a1")
    assert list(quote.line_item_amounts_micros) == expected
    assert quote.total_micros == total
    assert quote.balance_micros == grant
    assert quote.would_accept and not quote.HasField("refusal")
    assert (quote.covered_by_credits_micros, quote.overage_micros) == (total, 0)
    assert quote.catalog_version == VERSION

    r = b.debit("acme", "k1", items)
    assert list(r.line_item_amounts_micros) == expected
    assert r.total_micros == total
    assert r.balance_after_micros == grant - total
    assert r.catalog_version == VERSION
    assert (r.covered_by_credits_micros, r.overage_micros) == (total, 0)
    assert r.entry_id > 0 and r.debited_unix_seconds > 0
    assert b.balance("acme") == grant - total

    settled = b.get_debit("acme", "k1")
    assert settled.outcome == b.pb.metering_pb2.DEBIT_OUTCOME_ACCEPTED
    assert settled.debit == r


def steep_billing(pb, server, tmp_path, **kwargs):
    """A server on STEEP_CATALOG."""
    path = tmp_path / "steep-catalog.json"
    path.write_text(json.dumps(STEEP_CATALOG))
    return Billing(pb, server(args=["--catalog", str(path), *kwargs.pop("args", [])], **kwargs))


def test_largest_quantities_are_priced_exactly_and_one_more_is_refused(billing):
    b = billing
    b.create("big", plan="pro")
    items = [b.llm("claude-opus-4", MAX_TOKENS, MAX_TOKENS), b.tool("github", MAX_CALLS),
             b.storage("knowledge_base", MAX_BYTES)]
    q = b.quote("big", items)
    assert list(q.line_item_amounts_micros) == [expected_amount(i) for i in items]
    assert q.total_micros == sum(expected_amount(i) for i in items) == 90_000_000_000_000 + 10**12 + 93_132_257_462
    assert q.balance_micros == 0 and q.would_accept and q.overage_micros == q.total_micros
    before = b.snapshot("big")
    for field, item in [("llm.input_tokens", b.llm("gpt-4o-mini", MAX_TOKENS + 1, 0)),
                        ("llm.output_tokens", b.llm("gpt-4o-mini", 0, MAX_TOKENS + 1)),
                        ("tool_call.calls", b.tool("slack", MAX_CALLS + 1)),
                        ("storage.bytes", b.storage("traces", MAX_BYTES + 1))]:
        for call, request in [(b.metering.Quote, b.pb.metering_pb2.QuoteRequest(account_id="big", line_items=[items[1], item])),
                              (b.metering.Debit, b.request("big", "k1", [items[1], item]))]:
            code, info, details = b.refusal(call, request)
            assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "QUANTITY_TOO_LARGE"), details
            assert info.metadata["field"] == f"line_items[1].{field}", info
            assert details.startswith(f"line_items[1].{field} must be at most "), details
    b.assert_unchanged("big", before)
    assert b.debit("big", "k1", items).total_micros == q.total_micros


def test_largest_amounts_that_fit_and_the_first_that_do_not(pb, server, tmp_path):
    b = steep_billing(pb, server, tmp_path)
    b.create("big", plan="pro")
    items = [b.llm("steep", MAX_TOKENS, MAX_TOKENS)]
    q = b.quote("big", items)
    assert list(q.line_item_amounts_micros) == [expected_amount(i, STEEP_CATALOG) for i in items] == [8 * 10**18]
    assert q.balance_micros == 0 and q.would_accept and q.overage_micros == q.total_micros

    code, info, details = b.refusal(b.metering.Quote, b.pb.metering_pb2.QuoteRequest(
        account_id="big", line_items=[b.llm("dear", input_tokens=MAX_TOKENS)]))
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_TOO_LARGE"), details
    # Each item fits, the sum does not.
    code, info, details = b.refusal(b.metering.Quote, b.pb.metering_pb2.QuoteRequest(
        account_id="big", line_items=items * 2))
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_TOO_LARGE"), details


@pytest.mark.parametrize("threads", [1, 3])
def test_a_debit_that_would_carry_the_accounts_totals_past_int64_is_refused_by_quote_and_debit(pb, server, tmp_path,
                                                                                               threads):
    """Each debit fits; the account's lifetime amount (and overage) after
    the second would not: Quote and Debit both refuse it as
    AMOUNT_TOO_LARGE, nothing is charged, and the key stays free for
    another request. With three loops, over a connection on each (the
    ledger's loop enters the actor synchronously, the others as a task).
    (The lifetime token sums are as far out of reach through the API now
    that a line item's tokens are bounded; DebitRulesTests check them.)"""
    b = steep_billing(pb, server, tmp_path, args=["--threads", str(threads)])
    served = b.served
    b.create("tokens", plan="pro")
    b.metering.Debit(b.request("tokens", "k1", [b.llm("steep", MAX_TOKENS, MAX_TOKENS)]), timeout=RPC_TIMEOUT_S)
    before = (b.usage_total("tokens"), b.balance("tokens"))
    one = [b.llm("steep", input_tokens=MAX_TOKENS)]
    # Connections go to the loops in turn: `b`'s own is one, these the next three.
    channels = [served.authorized_channel(options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(3)]
    for n, channel in enumerate(channels):
        stub = pb.metering_pb2_grpc.MeteringStub(channel)
        code, info, details = b.refusal(stub.Quote, pb.metering_pb2.QuoteRequest(account_id="tokens", line_items=one))
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_TOO_LARGE"), details
        code, info, details = b.refusal(stub.Debit, b.request("tokens", "k2", one))
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_TOO_LARGE"), details
        assert (b.usage_total("tokens"), b.balance("tokens")) == before, f"connection {n}"
        assert b.get_debit("tokens", "k2").outcome == b.pb.metering_pb2.DEBIT_OUTCOME_UNKNOWN
    if threads == 3:
        loops = set(re.findall(r"loop=(\d+).*connection accepted", served.log()))
        assert loops == {"0", "1", "2"}, f"connections were served by loops {sorted(loops)} only"
    # A tool call's amount still fits: accepted under the same key.
    assert b.metering.Debit(b.request("tokens", "k2", [b.tool("slack", 1)]), timeout=RPC_TIMEOUT_S).total_micros > 0
    for channel in channels:
        channel.close()


def test_a_storage_line_of_int64_bytes_is_refused_and_storage_debits_go_on(billing):
    """A caller's wrapped counter (2^63 - 1 bytes) is refused on its own
    line, not accepted: once accepted it would have carried the account's
    lifetime storage bytes to Int64's bound and every later storage debit
    of the account would have been refused."""
    b = billing
    b.create("cells", plan="pro")
    before = b.snapshot("cells")
    code, info, details = b.refusal(b.metering.Debit, b.request("cells", "k1", [b.storage("traces", INT64_MAX)]))
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "QUANTITY_TOO_LARGE"), details
    b.assert_unchanged("cells", before)
    for n in range(3):
        b.debit("cells", f"k{n + 2}", [b.storage("traces", MAX_BYTES)])
    assert b.usage_total("cells") == 3 * expected_amount(b.storage("traces", MAX_BYTES))


def test_execution_cost_lists_the_runs_debits(billing):
    b = billing
    grant = 10_000_000
    b.create("acme", credits=grant)
    b.create("other", credits=grant)
    first = b.debit("acme", "k1", items_of_every_kind(b)[:4], run="run-7", agent="planner")
    second = b.debit("acme", "k2", [b.tool("github", 4), b.storage("traces", 1 << 20)], run="run-7",
                     workspace="w1", agent="writer")
    b.debit("acme", "k3", [b.tool("slack", 1)], run="run-8")        # another run
    b.debit("other", "k1", [b.tool("slack", 9)], run="run-7")       # same run id, another account

    cost = b.execution_cost("acme", "run-7")
    assert (cost.run_id, cost.account_id) == ("run-7", "acme")
    assert list(cost.catalog_versions) == [VERSION]
    assert [d.entry_id for d in cost.debits] == [first.entry_id, second.entry_id]
    for d, (key, response) in zip(cost.debits, [("k1", first), ("k2", second)]):
        request = b.accepted[response.entry_id][0]
        assert d.idempotency_key == key
        assert d.catalog_version == VERSION
        assert (d.workspace_id, d.agent_id) == (request.workspace_id, request.agent_id)
        assert d.debited_unix_seconds == response.debited_unix_seconds
        assert [li.line_item for li in d.line_items] == list(request.line_items)
        assert [li.key for li in d.line_items] == [line_key(i) for i in request.line_items]
        assert [li.amount_micros for li in d.line_items] == [expected_amount(i) for i in request.line_items]
        assert d.total_micros == response.total_micros == sum(li.amount_micros for li in d.line_items)
        assert (d.covered_by_credits_micros, d.overage_micros) == (response.total_micros, 0)
    assert cost.total_micros == first.total_micros + second.total_micros

    other = b.execution_cost("other", "run-7")
    assert [d.idempotency_key for d in other.debits] == ["k1"]
    assert other.total_micros == 9 * CATALOG["tool_calls"]["micros_per_call"]["slack"]


def test_execution_cost_pages_a_long_run(billing):
    """Debits oldest first, a page at a time; the total, count and catalog
    versions cover the whole run on every page."""
    b = billing
    b.create("acme", credits=10_000_000)
    debits = [b.debit("acme", f"k{i}", [b.tool("slack", 1 + i)], run="long") for i in range(5)]
    m = b.pb.metering_pb2
    seen, token, pages = [], "", 0
    while True:
        page = b.metering.GetExecutionCost(m.GetExecutionCostRequest(account_id="acme", run_id="long", page_size=2,
                                                                      page_token=token), timeout=RPC_TIMEOUT_S)
        pages += 1
        assert page.debit_count == 5 and page.total_micros == sum(d.total_micros for d in debits)
        assert list(page.catalog_versions) == [VERSION]
        seen += [d.entry_id for d in page.debits]
        token = page.next_page_token
        if not token:
            break
        assert pages < 10
    assert (pages, seen) == (3, [d.entry_id for d in debits])
    assert [d.entry_id for d in b.execution_cost("acme", "long").debits] == seen  # the default page holds them all
    for bad in ("x", "e", "e-3", "e0", "9"):
        code, info, _ = b.refusal(b.metering.GetExecutionCost,
                                  m.GetExecutionCostRequest(account_id="acme", run_id="long", page_token=bad))
        assert (code, info.reason, info.metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "page_token"), bad
    code, info, _ = b.refusal(b.metering.GetExecutionCost,
                              m.GetExecutionCostRequest(account_id="acme", run_id="long", page_size=-1))
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")


def test_execution_cost_pages_a_run_that_grows_between_pages(pb, server, verify):
    """A page after the first reads only its own debits and those added
    since (the totals of recently asked runs are kept): with debits joining
    the run between pages — some of them indexed in SQLite by a checkpoint
    (every 7 entries here), some still in memory — every page's total,
    count and catalog versions are the whole run's as it stands, the pages
    list each debit once, oldest first, and a page that ends the run
    exactly carries no token."""
    served = server(args=["--checkpoint-every", "7"])
    b = Billing(pb, served)
    m = pb.metering_pb2
    b.create("acme", credits=1_000_000_000)
    debits = [b.debit("acme", f"k{i}", [b.tool("slack", 1 + i)], run="grows") for i in range(4)]
    b.debit("acme", "other", [b.tool("slack", 1)], run="another")  # not in the run

    def page(token, size=2):
        return b.metering.GetExecutionCost(m.GetExecutionCostRequest(account_id="acme", run_id="grows", page_size=size,
                                                                      page_token=token), timeout=RPC_TIMEOUT_S)

    def check(answer):
        assert answer.debit_count == len(debits), (answer.debit_count, len(debits))
        assert answer.total_micros == sum(d.total_micros for d in debits)
        assert list(answer.catalog_versions) == [VERSION]

    first = page("")
    check(first)
    seen = [d.entry_id for d in first.debits]
    token = first.next_page_token
    grown = 0
    pages = 1
    while token:
        if grown < 4:
            # The run grows between pages: debits of it, and one refused (it counts nothing).
            for _ in range(3):
                debits.append(b.debit("acme", f"k{len(debits)}", [b.tool("slack", 1 + len(debits))], run="grows"))
            grown += 1
            assert b.refusal(b.metering.Debit, b.request("acme", "k0", [b.tool("slack", 99)], run="grows"))[1].reason == \
                "IDEMPOTENCY_KEY_REUSED"
        answer = page(token)
        check(answer)
        seen += [d.entry_id for d in answer.debits]
        token = answer.next_page_token
        pages += 1
        assert pages < 50
    assert grown == 4
    assert seen == [d.entry_id for d in debits]  # each once, oldest first
    # Exactly one page's worth left: no token.
    last_two = page(f"e{seen[-3]}")
    assert [d.entry_id for d in last_two.debits] == seen[-2:] and last_two.next_page_token == ""
    verify(served.db_path)


def test_execution_cost_of_a_run_without_debits_is_not_found(billing):
    """metering.proto: "GetExecutionCostResponse. NOT_FOUND if the run has no accepted debit"."""
    b = billing
    b.create("acme", credits=1_000)
    code, info, details = b.refusal(b.metering.GetExecutionCost, b.pb.metering_pb2.GetExecutionCostRequest(
        account_id="acme", run_id="never-debited"))
    assert code == grpc.StatusCode.NOT_FOUND, details


def test_execution_cost_of_an_unknown_account_is_not_found(billing):
    b = billing
    code, info, _ = b.refusal(b.metering.GetExecutionCost, b.pb.metering_pb2.GetExecutionCostRequest(
        account_id="ghost", run_id="r1"))
    assert (code, info.reason) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")


GROUPINGS = [list(c) for n in range(4) for c in itertools.combinations(["day", "agent", "line_item"], n)]


def test_usage_buckets_add_up_for_every_grouping(billing):
    b = billing
    b.create("acme", credits=100_000_000)
    b.create("other", credits=100_000_000)
    every = items_of_every_kind(b)
    b.debit("acme", "k1", every, agent="planner", run="r1")
    b.debit("acme", "k2", every[:3] + [b.tool("slack", 5)], agent="writer", run="r1")
    b.debit("acme", "k3", [b.llm("gpt-4o", 1_000_000, 1), b.storage("knowledge_base", 5 * GIB)], agent="planner",
            run="r2")
    b.batch([b.request("acme", f"b{i}", [b.llm("claude-sonnet-4", 10 + i, 3 * i), b.tool("gmail", i)],
                       agent=f"agent-{i % 3}", run=f"r{i}") for i in range(20)])
    b.debit("other", "k1", every, agent="planner")  # not acme's

    assert_usage_exact(b, "acme")
    for group_by in GROUPINGS:
        usage = b.usage("acme", group_by)
        assert usage.from_unix_seconds == 0
        assert usage.to_unix_seconds % 86_400 == 0 and usage.to_unix_seconds > max(
            r.debited_unix_seconds for _, r in b.debits_of("acme"))
    # Group-by order in the request does not matter.
    assert b.usage("acme", ["line_item", "day"]).buckets == b.usage("acme", ["day", "line_item"]).buckets


def test_usage_has_no_bucket_of_nothing(billing):
    """A line item of zero quantity (and so zero amount) is accepted and
    charged nothing; it makes no bucket: the buckets are the non-empty ones."""
    b = billing
    b.create("acme", credits=100_000_000)
    nothing = b.debit("acme", "k0", [b.tool("slack", 0)], agent="idle", run="r0")
    assert nothing.total_micros == 0
    b.debit("acme", "k1", [b.tool("github", 2)], agent="busy", run="r1")
    for group_by in GROUPINGS:
        usage = b.usage("acme", group_by)
        assert all(x.amount_micros or x.quantity or x.input_tokens or x.output_tokens or x.tool_calls or x.storage_bytes
                   for x in usage.buckets), (group_by, usage.buckets)
    assert [x.agent_id for x in b.usage("acme", ["agent"]).buckets] == ["busy"]


def test_usage_range_is_whole_utc_days(billing):
    b = billing
    b.create("acme", credits=1_000_000)
    r = b.debit("acme", "k1", [b.tool("slack", 2)])
    today = r.debited_unix_seconds - r.debited_unix_seconds % 86_400
    usage = b.usage("acme", ["day"], from_unix=r.debited_unix_seconds, to_unix=r.debited_unix_seconds + 1)
    assert (usage.from_unix_seconds, usage.to_unix_seconds) == (today, today + 86_400)
    assert [(x.day, x.amount_micros) for x in usage.buckets] == [(utc_day(today), 2000)]
    assert usage.total_micros == 2000
    before = b.usage("acme", ["day"], from_unix=0, to_unix=today)   # ends where today starts
    assert (list(before.buckets), before.total_micros) == ([], 0)
    # An empty range (from = to) is allowed (session 27: INVALID_RANGE, so
    # "from the period's start to now" failed in the second a period began);
    # widened like any other: inside a day it covers that day, at 00:00 nothing.
    inside = b.usage("acme", ["day"], from_unix=r.debited_unix_seconds, to_unix=r.debited_unix_seconds)
    at_midnight = b.usage("acme", ["day"], from_unix=today, to_unix=today)
    if r.debited_unix_seconds != today:
        assert (inside.from_unix_seconds, inside.to_unix_seconds, inside.total_micros) == (today, today + 86_400, 2000)
    assert (at_midnight.from_unix_seconds, at_midnight.to_unix_seconds, at_midnight.total_micros) == (today, today, 0)
    assert list(at_midnight.buckets) == []
    for bad in [dict(from_unix=-1), dict(from_unix=today + 10, to_unix=today + 5)]:
        code, info, _ = b.refusal(b.metering.GetUsage, b.pb.metering_pb2.GetUsageRequest(
            account_id="acme", from_unix_seconds=bad.get("from_unix", 0), to_unix_seconds=bad.get("to_unix", 0)))
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_RANGE"), bad
    m = b.pb.metering_pb2
    for group_by in [[m.USAGE_GROUP_BY_DAY, m.USAGE_GROUP_BY_DAY], [m.USAGE_GROUP_BY_UNSPECIFIED], [42]]:
        code, info, _ = b.refusal(b.metering.GetUsage, m.GetUsageRequest(account_id="acme", group_by=group_by))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "INVALID_FIELD", group_by
    code, info, _ = b.refusal(b.metering.GetUsage, m.GetUsageRequest(account_id="ghost"))
    assert (code, info.reason) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")


# --------------------------------------------------------------------------
# Idempotency


def test_same_key_same_request_is_charged_once(billing):
    b = billing
    grant = 1_000_000
    b.create("acme", credits=grant)
    items = [b.llm("gpt-4o", 1000, 500), b.tool("slack", 3)]
    first = b.debit("acme", "k1", items)
    for _ in range(3):
        again = b.debit("acme", "k1", items)
        assert again == first  # the original response, balance_after included
    total = sum(expected_amount(i) for i in items)
    assert b.balance("acme") == grant - total
    assert b.usage_total("acme") == total
    assert [d.entry_id for d in b.execution_cost("acme", "r1").debits] == [first.entry_id]
    # A later debit does not change what the key answers.
    b.debit("acme", "k2", items)
    assert b.debit("acme", "k1", items) == first
    assert b.get_debit("acme", "k1").debit == first


def test_same_key_concurrently_is_charged_once(billing):
    b = billing
    grant = 1_000_000
    b.create("acme", credits=grant)
    request = b.request("acme", "k-race", [b.llm("claude-sonnet-4", 777, 333)])
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: b.metering.Debit(request, timeout=RPC_TIMEOUT_S), range(48)))
    assert len({r.SerializeToString() for r in responses}) == 1, responses[:2]
    assert b.balance("acme") == grant - responses[0].total_micros
    assert b.usage_total("acme") == responses[0].total_micros


def test_same_key_different_request_is_refused(billing):
    b = billing
    grant = 1_000_000
    b.create("acme", credits=grant)
    items = [b.llm("gpt-4o", 1000, 500)]
    first = b.debit("acme", "k1", items)
    before = b.snapshot("acme")
    variants = {
        "tokens": b.request("acme", "k1", [b.llm("gpt-4o", 1000, 501)]),
        "model": b.request("acme", "k1", [b.llm("gpt-4.1", 1000, 500)]),
        "more items": b.request("acme", "k1", items + [b.tool("slack", 1)]),
        "run": b.request("acme", "k1", items, run="r2"),
        "agent": b.request("acme", "k1", items, agent="a2"),
        "workspace": b.request("acme", "k1", items, workspace="w2"),
    }
    for what, request in variants.items():
        code, info, details = b.refused_debit(request)
        assert (code, info.reason) == (grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED"), what
        assert details, what
        b.assert_unchanged("acme", before, what)
    # The original still answers for the key, and the key is scoped to the account.
    assert b.debit("acme", "k1", items) == first
    assert b.get_debit("acme", "k1").debit == first
    b.create("other", credits=grant)
    elsewhere = b.debit("other", "k1", items)
    assert elsewhere.entry_id != first.entry_id and elsewhere.balance_after_micros == grant - first.total_micros
    assert b.balance("acme") == grant - first.total_micros


def test_grant_credits_is_idempotent_per_key(billing):
    """admin.proto: GrantCredits is "Idempotent per key"; "a retry with the same key grants once"."""
    b = billing
    b.create("acme")
    request = b.pb.admin_pb2.GrantCreditsRequest(account_id="acme", amount_micros=5_000_000, reason="promo",
                                                  idempotency_key="grant-once")
    first = b.admin.GrantCredits(request, timeout=RPC_TIMEOUT_S)
    second = b.admin.GrantCredits(request, timeout=RPC_TIMEOUT_S)
    assert first.credit_balance_micros == 5_000_000
    assert b.balance("acme") == 5_000_000, "a retried grant was granted twice"
    assert second == first


def test_debits_that_hit_their_deadline_are_settled_by_key(billing):
    """A caller whose call hit its deadline settles it with GetDebit, then a
    retry with the same key: each debit is charged exactly once."""
    b = billing
    grant = 1_000_000
    b.create("acme", plan="pro", credits=grant)
    m = b.pb.metering_pb2
    requests = [b.request("acme", f"k{i}", [b.tool("slack", 1 + i % 3), b.llm("gpt-4o", i)], run=f"r{i % 5}")
                for i in range(64)]
    futures = [b.metering.Debit.future(r, timeout=0.001) for r in requests]
    acked = {}
    for request, future in zip(requests, futures):
        try:
            acked[request.idempotency_key] = future.result(timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (error.code(), error.details())
    settled = {r.idempotency_key: b.get_debit("acme", r.idempotency_key) for r in requests}
    for key, response in acked.items():
        assert settled[key].debit == response, key
    assert all(s.outcome in (m.DEBIT_OUTCOME_ACCEPTED, m.DEBIT_OUTCOME_UNKNOWN) for s in settled.values())
    for request in requests:
        r = b.debit_request(request)
        key = request.idempotency_key
        if settled[key].outcome == m.DEBIT_OUTCOME_ACCEPTED:
            assert r == settled[key].debit, key
    totals = [sum(expected_amount(i) for i in r.line_items) for r in requests]
    assert len(b.accepted) == len(requests)
    assert sorted(r.total_micros for _, r in b.accepted.values()) == sorted(totals)
    assert b.usage_total("acme") == sum(totals)
    assert b.balance("acme") == max(grant - sum(totals), 0)
    assert sum(r.covered_by_credits_micros for _, r in b.accepted.values()) == min(grant, sum(totals))


def test_provisioning_refusals(billing):
    b = billing
    b.create("acme", credits=1_000)
    a, adm = b.pb.accounts_pb2, b.pb.admin_pb2
    code, info, _ = b.refusal(b.accounts.CreateAccount, a.CreateAccountRequest(account_id="acme"))
    assert (code, info.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ACCOUNT_EXISTS")
    code, info, _ = b.refusal(b.accounts.CreateAccount, a.CreateAccountRequest())
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD")
    code, info, _ = b.refusal(b.admin.GrantCredits, adm.GrantCreditsRequest(account_id="ghost", amount_micros=5,
                                                                             idempotency_key="g"))
    assert (code, info.reason) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    for amount in (0, -5):
        code, info, _ = b.refusal(b.admin.GrantCredits, adm.GrantCreditsRequest(account_id="acme", amount_micros=amount,
                                                                                 idempotency_key="g"))
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_AMOUNT"), amount
    code, info, _ = b.refusal(b.admin.GrantCredits, adm.GrantCreditsRequest(account_id="acme", amount_micros=INT64_MAX,
                                                                             idempotency_key="g-max"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, "the balance would overflow"
    assert b.balance("acme") == 1_000


# --------------------------------------------------------------------------
# Refusals: status, reason, nothing charged, sticky under the key


def assert_refused(b, request, code, reason, *, account=None):
    """The Debit is refused with `code`/`reason`; GetDebit says REFUSED with the same."""
    got_code, info, details = b.refused_debit(request)
    assert (got_code, info.reason) == (code, reason), details
    assert details, "a refusal has a human message"
    settled = b.get_debit(account or request.account_id, request.idempotency_key)
    assert settled.outcome == b.pb.metering_pb2.DEBIT_OUTCOME_REFUSED, settled
    assert (settled.refusal.code, settled.refusal.reason) == (code.value[0], reason), settled
    assert settled.refusal.message
    return info


def test_unknown_account(billing):
    b = billing
    b.create("acme", credits=1_000_000)
    before = b.snapshot("acme")
    request = b.request("ghost", "k1", [b.tool("slack", 1)])
    info = assert_refused(b, request, grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    assert info.metadata["account_id"] == "ghost"
    code, info, _ = b.refusal(b.metering.Quote, b.pb.metering_pb2.QuoteRequest(
        account_id="ghost", line_items=[b.tool("slack", 1)]))
    assert (code, info.reason) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    b.assert_unchanged("acme", before)
    # Sticks under its key even once the account exists and has credits.
    b.create("ghost", credits=1_000_000)
    assert_refused(b, request, grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    assert b.balance("ghost") == 1_000_000 and b.usage_total("ghost") == 0
    # A new attempt takes a new key.
    assert b.debit("ghost", "k2", [b.tool("slack", 1)]).balance_after_micros == 999_000


def test_unknown_account_takes_precedence_over_key_reuse(billing):
    """Precedence (issue 3, README): unknown account first, then key reuse."""
    b = billing
    assert_refused(b, b.request("ghost", "k1", [b.tool("slack", 1)]), grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    code, info, details = b.refused_debit(b.request("ghost", "k1", [b.tool("slack", 2)]))
    assert (code, info.reason) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND"), details


def test_free_plan_second_workspace(billing):
    b = billing
    b.create("solo", plan="free", credits=1_000_000)
    b.debit("solo", "k1", [b.tool("slack", 1)], workspace="ws-1")
    before = b.snapshot("solo")
    request = b.request("solo", "k2", [b.tool("slack", 1)], workspace="ws-2", run="r2")
    assert_refused(b, request, grpc.StatusCode.FAILED_PRECONDITION, "WORKSPACE_LIMIT")
    quote = b.quote("solo", [b.tool("slack", 1)], workspace="ws-2")
    assert not quote.would_accept
    assert (quote.refusal.code, quote.refusal.reason) == (FAILED_PRECONDITION, "WORKSPACE_LIMIT")
    b.assert_unchanged("solo", before)
    b.grant("solo", 5_000_000)
    assert_refused(b, request, grpc.StatusCode.FAILED_PRECONDITION, "WORKSPACE_LIMIT")
    # The first workspace goes on; Pro has no limit.
    b.debit("solo", "k3", [b.tool("slack", 1)], workspace="ws-1", run="r3")
    assert b.balance("solo") == 6_000_000 - 2_000
    b.create("team", plan="pro", credits=1_000_000)
    for i in range(3):
        b.debit("team", f"k{i}", [b.tool("slack", 1)], workspace=f"ws-{i}")


def test_workspace_limit_takes_precedence_over_credits(billing):
    b = billing
    b.create("solo", plan="free", credits=1_000)
    b.debit("solo", "k1", [b.tool("slack", 1)], workspace="ws-1")  # balance now 0
    before = b.snapshot("solo")
    assert_refused(b, b.request("solo", "k2", [b.tool("slack", 1)], workspace="ws-2"),
                   grpc.StatusCode.FAILED_PRECONDITION, "WORKSPACE_LIMIT")
    b.assert_unchanged("solo", before, "a debit refused for its workspace")


@pytest.mark.parametrize("plan", [None, "free"], ids=["trial", "free"])
def test_insufficient_credits(billing, plan):
    b = billing
    b.create("acme", plan=plan, credits=10_000)
    b.debit("acme", "k0", [b.tool("slack", 4)])             # 4,000 of 10,000
    before = b.snapshot("acme")
    request = b.request("acme", "k1", [b.tool("slack", 7)])  # 7,000 > 6,000
    assert_refused(b, request, grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    quote = b.quote("acme", [b.tool("slack", 7)])
    assert not quote.would_accept and quote.total_micros == 7_000 and quote.balance_micros == 6_000
    assert (quote.refusal.code, quote.refusal.reason) == (FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    b.assert_unchanged("acme", before)
    # Sticks under its key after credits are granted; a new key is accepted.
    b.grant("acme", 1_000_000)
    assert_refused(b, request, grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    # The refused key is still taken: another request under it is a reuse.
    code, info, _ = b.refused_debit(b.request("acme", "k1", [b.tool("slack", 1)]))
    assert (code, info.reason) == (grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
    assert b.balance("acme") == 1_006_000
    r = b.debit("acme", "k2", [b.tool("slack", 7)])
    assert (r.balance_after_micros, r.covered_by_credits_micros, r.overage_micros) == (999_000, 7_000, 0)


def test_exact_balance_is_enough_and_one_micro_more_is_not(billing):
    b = billing
    b.create("acme", credits=3_000)
    assert_refused(b, b.request("acme", "k1", [b.tool("slack", 3), b.llm("gpt-4o-mini", 10)]),  # 3,002
                   grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    r = b.debit("acme", "k2", [b.tool("slack", 3)])
    assert r.balance_after_micros == 0
    # A zero-cost debit is still accepted at balance 0.
    assert b.debit("acme", "k3", [b.llm("gpt-4.1-mini", 1)]).total_micros == 0
    assert b.balance("acme") == 0


def test_run_quota_of_the_free_plan(billing):
    b = billing
    quota = 200
    b.create("solo", plan="free", credits=10_000_000)
    per_run = [b.tool("http", 1)]  # 500 micros
    results = b.batch([b.request("solo", f"k{i}", per_run, run=f"run-{i}") for i in range(quota - 1)])
    assert all(r.WhichOneof("outcome") == "accepted" for r in results), [r for r in results if r.HasField("refused")][:1]
    # A refused debit does not use up the last run.
    assert_refused(b, b.request("solo", "too-dear", [b.llm("claude-opus-4", 10**9)], run="run-dear"),
                   grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    # The 200th run twice (it counts once) and the 201st in one batch.
    results = b.batch([b.request("solo", "k-last-a", per_run, run="run-last"),
                       b.request("solo", "k-last-b", per_run, run="run-last"),
                       b.request("solo", "k-over", per_run, run="run-over")])
    assert [r.WhichOneof("outcome") for r in results] == ["accepted", "accepted", "refused"], results
    assert (results[2].refused.code, results[2].refused.reason) == (RESOURCE_EXHAUSTED, "RUN_QUOTA_EXCEEDED")
    before = b.snapshot("solo")
    assert before[0] == 10_000_000 - (quota + 1) * 500
    request = b.request("solo", "k-over-2", per_run, run="run-over-2")
    assert_refused(b, request, grpc.StatusCode.RESOURCE_EXHAUSTED, "RUN_QUOTA_EXCEEDED")
    quote = b.quote("solo", per_run, run="run-over-2")
    assert not quote.would_accept
    assert (quote.refusal.code, quote.refusal.reason) == (RESOURCE_EXHAUSTED, "RUN_QUOTA_EXCEEDED")
    assert b.quote("solo", per_run, run="run-7").would_accept
    # Over quota comes before insufficient credits.
    assert_refused(b, b.request("solo", "k-over-dear", [b.llm("claude-opus-4", 10**9)], run="run-over-3"),
                   grpc.StatusCode.RESOURCE_EXHAUSTED, "RUN_QUOTA_EXCEEDED")
    b.assert_unchanged("solo", before)
    # More debits of runs already counted are still accepted.
    r = b.debit("solo", "k-more", per_run, run="run-7")
    assert r.balance_after_micros == before[0] - 500
    assert len(b.execution_cost("solo", "run-7").debits) == 2
    # Sticks under its key.
    b.grant("solo", 1_000_000)
    assert_refused(b, request, grpc.StatusCode.RESOURCE_EXHAUSTED, "RUN_QUOTA_EXCEEDED")
    assert b.get_debit("solo", "k-over").refusal.reason == "RUN_QUOTA_EXCEEDED"


@pytest.mark.parametrize("plan", ["pro", "enterprise"])
def test_overage_when_credits_do_not_cover(billing, plan):
    b = billing
    b.create("acme", plan=plan, credits=1_000)
    items = [b.tool("slack", 2), b.llm("gpt-4o", 100, 10)]  # 2,000 + 350
    total = sum(expected_amount(i) for i in items)
    quote = b.quote("acme", items)
    assert quote.would_accept and (quote.covered_by_credits_micros, quote.overage_micros) == (1_000, total - 1_000)
    r = b.debit("acme", "k1", items)
    assert (r.total_micros, r.covered_by_credits_micros, r.overage_micros, r.balance_after_micros) == \
        (total, 1_000, total - 1_000, 0)
    r2 = b.debit("acme", "k2", items)
    assert (r2.total_micros, r2.covered_by_credits_micros, r2.overage_micros, r2.balance_after_micros) == \
        (total, 0, total, 0)
    assert b.balance("acme") == 0
    assert b.usage_total("acme") == 2 * total  # usage counts the overage too
    cost = b.execution_cost("acme", "r1")
    assert [(d.covered_by_credits_micros, d.overage_micros) for d in cost.debits] == [(1_000, total - 1_000), (0, total)]
    assert b.debit("acme", "k1", items) == r
    # Credits granted later cover new debits first.
    b.grant("acme", 10_000)
    r3 = b.debit("acme", "k3", items)
    assert (r3.covered_by_credits_micros, r3.overage_micros, r3.balance_after_micros) == (total, 0, 10_000 - total)


def test_trial_does_not_accrue_overage(billing):
    b = billing
    b.create("trial")  # Pro quota, no overage, no credits
    assert_refused(b, b.request("trial", "k1", [b.tool("slack", 1)]),
                   grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    assert b.balance("trial") == 0 and b.usage_total("trial") == 0


# --------------------------------------------------------------------------
# Bad input


def bad_requests(b):
    ok = [b.tool("slack", 1)]
    c = b.pb.common_pb2
    return {
        "missing account_id": (b.request("", "k", ok), "MISSING_FIELD"),
        "missing idempotency_key": (b.request("acme", "", ok), "MISSING_FIELD"),
        "missing run_id": (b.request("acme", "k", ok, run=""), "MISSING_FIELD"),
        "missing workspace_id": (b.request("acme", "k", ok, workspace=""), "MISSING_FIELD"),
        "missing agent_id": (b.request("acme", "k", ok, agent=""), "MISSING_FIELD"),
        "negative input tokens": (b.request("acme", "k", [b.llm("gpt-4o", -1, 5)]), "NEGATIVE_QUANTITY"),
        "negative output tokens": (b.request("acme", "k", [b.llm("gpt-4o", 5, -(1 << 63))]), "NEGATIVE_QUANTITY"),
        "negative calls": (b.request("acme", "k", ok + [b.tool("slack", -3)]), "NEGATIVE_QUANTITY"),
        "negative bytes": (b.request("acme", "k", [b.storage("traces", -1)]), "NEGATIVE_QUANTITY"),
        "unknown model": (b.request("acme", "k", ok + [b.llm("gpt-99-turbo", 1, 1)]), "UNKNOWN_MODEL"),
        "model in another case": (b.request("acme", "k", [b.llm("GPT-4o", 1, 1)]), "UNKNOWN_MODEL"),
        "empty model": (b.request("acme", "k", [b.llm("", 1, 1)]), "MISSING_FIELD"),
        "empty integration": (b.request("acme", "k", [b.tool("", 1)]), "MISSING_FIELD"),
        "unspecified storage kind": (b.request("acme", "k", [b.storage(c.STORAGE_KIND_UNSPECIFIED, 10)]),
                                     "INVALID_FIELD"),
        "unknown storage kind": (b.request("acme", "k", [b.storage(7, 10)]), "INVALID_FIELD"),
        "line item without a kind": (b.request("acme", "k", ok + [c.LineItem()]), "MISSING_FIELD"),
        "no line items": (b.request("acme", "k", []), "NO_LINE_ITEMS"),
        "257 line items": (b.request("acme", "k", ok * 257), "TOO_MANY_LINE_ITEMS"),
        "token sum overflows": (b.request("acme", "k", [b.llm("gpt-4o-mini", INT64_MAX, 1)]), "QUANTITY_TOO_LARGE"),
        "input tokens over the limit": (b.request("acme", "k", [b.llm("gpt-4o", MAX_TOKENS + 1, 0)]), "QUANTITY_TOO_LARGE"),
        "output tokens over the limit": (b.request("acme", "k", [b.llm("gpt-4o", 0, MAX_TOKENS + 1)]),
                                         "QUANTITY_TOO_LARGE"),
        "calls over the limit": (b.request("acme", "k", ok + [b.tool("slack", MAX_CALLS + 1)]), "QUANTITY_TOO_LARGE"),
        "bytes over the limit": (b.request("acme", "k", [b.storage("traces", MAX_BYTES + 1)]), "QUANTITY_TOO_LARGE"),
        "account_id of 257 bytes": (b.request("a" * 257, "k", ok), "FIELD_TOO_LONG"),
        "idempotency_key of 257 bytes": (b.request("acme", "k" * 257, ok), "FIELD_TOO_LONG"),
        "run_id of 258 UTF-8 bytes": (b.request("acme", "k", ok, run="€" * 86), "FIELD_TOO_LONG"),
        "model of 300 bytes": (b.request("acme", "k", [b.llm("m" * 300, 1)]), "FIELD_TOO_LONG"),
        "control character in key": (b.request("acme", "k\n1", ok), "INVALID_FIELD"),
        "NUL in account_id": (b.request("ac\x00me", "k", ok), "INVALID_FIELD"),
        "DEL in agent_id": (b.request("acme", "k", ok, agent="agent\x7f"), "INVALID_FIELD"),
    }


# Fields a Quote does not have or does not require.
NOT_IN_A_QUOTE = {"missing idempotency_key", "missing run_id", "missing workspace_id", "missing agent_id",
                  "idempotency_key of 257 bytes", "control character in key"}


def test_bad_input_is_invalid_argument_and_charges_nothing(billing):
    b = billing
    b.create("acme", credits=1_000_000)
    b.debit("acme", "k0", [b.tool("slack", 1)])
    before = b.snapshot("acme")
    for what, (request, reason) in bad_requests(b).items():
        code, info, details = b.refused_debit(request)
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason), f"{what}: {details}"
        assert details, what
        if reason == "UNKNOWN_MODEL":
            model = request.line_items[-1].llm.model
            assert model in details, f"{what}: the message names the model: {details!r}"
            # ...and which line item it is.
            at = f"line_items[{len(request.line_items) - 1}]"
            assert details.startswith(at + ":") and info.metadata["field"] == at, f"{what}: {details!r} {info.metadata}"
        if request.idempotency_key == "k" and request.account_id == "acme":
            # Never reached the ledger: nothing is recorded under the key.
            assert b.get_debit("acme", "k").outcome == b.pb.metering_pb2.DEBIT_OUTCOME_UNKNOWN, what
        # Quote validates the same way.
        if request.account_id and what not in NOT_IN_A_QUOTE:
            q = b.pb.metering_pb2.QuoteRequest(account_id=request.account_id, workspace_id=request.workspace_id,
                                               agent_id=request.agent_id, run_id=request.run_id,
                                               line_items=request.line_items)
            code, info, details = b.refusal(b.metering.Quote, q)
            assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason), f"Quote, {what}: {details}"
    b.assert_unchanged("acme", before)
    # The same key with a valid request is then accepted: bad input recorded nothing.
    assert b.debit("acme", "k", [b.tool("slack", 1)]).balance_after_micros == before[0] - 1_000


def test_ids_of_exactly_256_bytes_are_fine(billing):
    b = billing
    account = "A" * 256
    b.create(account, credits=1_000_000)
    key, run = "€" * 85 + "k", "r" * 256   # 256 UTF-8 bytes each
    r = b.debit(account, key, [b.tool("slack", 1)], run=run, workspace="w" * 256, agent="g" * 256)
    assert b.get_debit(account, key).debit == r
    assert [d.idempotency_key for d in b.execution_cost(account, run).debits] == [key]


def test_unknown_integration_without_a_default_price(pb, server, tmp_path, verify):
    catalog = json.loads(CATALOG_PATH.read_text())
    catalog["version"] = "test-no-default"
    del catalog["tool_calls"]["default_micros_per_call"]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    s = server(args=["--catalog", str(path)])
    b = Billing(pb, s)
    b.create("acme", credits=1_000_000)
    before = b.snapshot("acme")
    code, info, details = b.refused_debit(b.request("acme", "k1", [b.tool("slack", 1), b.tool("jira", 1)]))
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_INTEGRATION"), details
    assert "jira" in details
    b.assert_unchanged("acme", before)
    r = b.debit("acme", "k2", [b.tool("slack", 1)])
    assert r.catalog_version == "test-no-default"
    assert list(b.execution_cost("acme", "r1").catalog_versions) == ["test-no-default"]
    verify(s.db_path)


def test_a_retry_of_a_debit_the_catalog_no_longer_prices_answers_the_original(pb, server, tmp_path, verify):
    """The same key with the same request returns the original outcome, also
    after a model left the catalog: it was refused UNKNOWN_MODEL ("nothing
    charged") for a debit that was charged."""
    catalog = json.loads(CATALOG_PATH.read_text())
    catalog["version"] = "with-legacy"
    catalog["models"]["legacy-model"] = {"input_micros_per_million_tokens": 1_000_000,
                                         "output_micros_per_million_tokens": 1_000_000}
    with_legacy = tmp_path / "with.json"
    with_legacy.write_text(json.dumps(catalog))
    s = server(args=["--catalog", str(with_legacy)])
    b = Billing(pb, s)
    b.create("acme", credits=1_000_000)
    original = b.debit("acme", "k1", [b.llm("legacy-model", 1_000)])
    b.create("poor", plan="free")  # no credits: a debit is refused INSUFFICIENT_CREDITS
    refused_at_first = b.refused_debit(b.request("poor", "p1", [b.llm("legacy-model", 1_000_000)]))
    assert refused_at_first[1].reason == "INSUFFICIENT_CREDITS"
    batched = b.pb.metering_pb2.DebitBatchRequest(debits=[b.request("acme", "b1", [b.llm("legacy-model", 2_000)])])
    first_batch = b.metering.DebitBatch(batched, timeout=RPC_TIMEOUT_S).results[0].accepted
    s.terminate()
    assert s.wait_exit(10) == 0
    del catalog["models"]["legacy-model"]
    catalog["version"] = "without-legacy"
    without = tmp_path / "without.json"
    without.write_text(json.dumps(catalog))
    again = server(args=["--catalog", str(without)], db=s.db_path)
    again.credentials_path = s.credentials_path
    b = Billing(pb, again)
    assert b.debit("acme", "k1", [b.llm("legacy-model", 1_000)]) == original
    retried = b.metering.DebitBatch(batched, timeout=RPC_TIMEOUT_S).results[0]
    assert retried.HasField("accepted") and retried.accepted == first_batch, retried
    # A refused original is answered with its refusal, as any retry of it.
    code, info, _ = b.refused_debit(b.request("poor", "p1", [b.llm("legacy-model", 1_000_000)]))
    assert (code, info.reason) == (refused_at_first[0], "INSUFFICIENT_CREDITS")
    # Not the same request, or a new key: the catalog's refusal.
    for request in (b.request("acme", "k1", [b.llm("legacy-model", 9_999)]), b.request("acme", "k2", [b.llm("legacy-model", 1_000)])):
        code, info, _ = b.refused_debit(request)
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_MODEL")
    assert b.balance("acme") == 1_000_000 - original.total_micros - first_batch.total_micros
    verify(again.db_path)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_page_of_a_run_of_large_debits_reads_about_a_page(pb, server):
    """A page of a run is filled until its size (about 2 MiB) as well as
    its count: a `page_size` of 10,000 over a run of debits of 256 line
    items with long names read and held every one of up to 10,000 debits
    for a page of ~30 (session 28's review: ~1 GB for a run of 3,000, and
    paging it whole read n² debits). Out of memory after a restart, the
    first page's call raises the server's peak memory (mapped database
    pages included: the run's total is summed from every debit) by well
    under the 300 MiB it took before (155–185 MiB now); paged whole, every
    debit comes once."""
    served = server(args=["--checkpoint-every", "100"])
    b = Billing(pb, served)
    m = b.pb.metering_pb2
    b.create("acme", credits=10**12)
    items = [b.tool(f"{n:03d}" + "x" * 250, 1) for n in range(256)]  # priced at the catalog's default
    count = 1_000
    for start in range(0, count, 40):
        answer = b.metering.DebitBatch(m.DebitBatchRequest(debits=[b.request("acme", f"big-{i}", items, run="long")
                                                                   for i in range(start, min(count, start + 40))]), timeout=60)
        assert all(r.HasField("accepted") for r in answer.results)
    served.terminate()
    assert served.wait_exit(30) == 0
    again = server(db=served.db_path, args=["--checkpoint-every", "100"])
    again.credentials_path = served.credentials_path
    b = Billing(pb, again)
    before = peak_rss_kib(again.proc.pid)
    first = b.metering.GetExecutionCost(m.GetExecutionCostRequest(account_id="acme", run_id="long", page_size=10_000),
                                        timeout=60)
    grown_mib = (peak_rss_kib(again.proc.pid) - before) / 1024
    assert first.debit_count == count and 0 < len(first.debits) < 100 and first.next_page_token, len(first.debits)
    assert grown_mib < 240, f"the first page's call grew the server's peak memory by {grown_mib:.0f} MiB"
    seen, token = [], ""
    for _ in range(count):
        page = b.metering.GetExecutionCost(m.GetExecutionCostRequest(account_id="acme", run_id="long", page_size=10_000,
                                                                      page_token=token), timeout=60)
        assert page.ByteSize() <= 2_200_000
        seen += [d.idempotency_key for d in page.debits]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"big-{i}" for i in range(count)]


def test_the_largest_batch_of_refusals_and_a_run_of_large_debits_fit_a_stock_clients_4_mib(billing):
    """grpcio takes at most 4 MiB: 8,192 refusals quoting a 256-byte account
    id twice each once made 4.8 MB (after the refusals were journaled), and
    a page of 1,000 debits of 256 line items each 6 MB."""
    b = billing
    m = b.pb.metering_pb2
    ghost = "g" * 256
    batch = m.DebitBatchRequest(debits=[b.request(ghost, f"k{i}", [b.tool("slack", 1)]) for i in range(8_192)])
    results = b.metering.DebitBatch(batch, timeout=60).results
    assert len(results) == 8_192 and all(r.refused.reason == "ACCOUNT_NOT_FOUND" for r in results)
    assert len(results[0].refused.metadata["account_id"].encode()) <= 64
    b.create("acme", credits=10**12)
    items = [b.llm("gpt-4o", 1_000 + i) for i in range(256)]
    for start in range(0, 500, 100):
        answer = b.metering.DebitBatch(m.DebitBatchRequest(debits=[b.request("acme", f"big-{i}", items, run="long")
                                                                   for i in range(start, start + 100)]), timeout=60)
        assert all(r.HasField("accepted") for r in answer.results)
    seen, token = [], ""
    for _ in range(20):
        page = b.metering.GetExecutionCost(m.GetExecutionCostRequest(account_id="acme", run_id="long", page_token=token),
                                           timeout=RPC_TIMEOUT_S)
        assert page.ByteSize() <= 2_200_000 and page.debit_count == 500
        seen += [d.idempotency_key for d in page.debits]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"big-{i}" for i in range(500)]
    # Debits of mixed sizes: a page ends at the first that does not fit; a
    # smaller one after it waits for the next page (it once joined the page
    # after its token: sent twice, out of order).
    small = [b.tool("slack", 1)]
    order = [f"{kind}-{i}" for i in range(150) for kind in ("L", "s")]
    for start in range(0, len(order), 100):
        answer = b.metering.DebitBatch(m.DebitBatchRequest(debits=[
            b.request("acme", key, items if key.startswith("L") else small, run="mixed") for key in order[start:start + 100]]),
            timeout=60)
        assert all(r.HasField("accepted") for r in answer.results)
    seen, token, pages = [], "", 0
    while True:
        page = b.metering.GetExecutionCost(m.GetExecutionCostRequest(account_id="acme", run_id="mixed", page_token=token),
                                           timeout=RPC_TIMEOUT_S)
        seen += [d.idempotency_key for d in page.debits]
        pages += 1
        token = page.next_page_token
        if not token or pages > 10:
            break
    assert pages > 1 and seen == order


def test_a_catalog_version_names_one_set_of_prices(pb, server, tmp_path):
    """Every debit records its catalog version: served again with other
    prices under the same version, two debits of one version would have
    been priced differently. Refused at start; the same prices (laid out
    differently) or a new version start."""
    catalog = json.loads(CATALOG_PATH.read_text())
    catalog["version"] = "pinned-1"
    first = tmp_path / "first.json"
    first.write_text(json.dumps(catalog))
    s = server(args=["--catalog", str(first)])
    s.terminate()
    assert s.wait_exit(10) == 0
    relaid = tmp_path / "relaid.json"
    relaid.write_text(json.dumps(catalog, indent=4, sort_keys=True))  # the same prices
    catalog["models"]["gpt-4o"]["input_micros_per_million_tokens"] += 1
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(catalog))
    refused = subprocess.run([str(billing_binary()), "serve", "--listen", "127.0.0.1:0", "--db", str(s.db_path),
                              "--catalog", str(changed)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert 0 < refused.returncode < 128, refused.stdout + refused.stderr
    assert "price catalog version pinned-1 was served before with other prices" in refused.stderr, refused.stderr
    for path in (relaid,):
        again = server(args=["--catalog", str(path)], db=s.db_path)
        again.terminate()
        assert again.wait_exit(10) == 0
    # A start that could not serve (its port taken) recorded nothing: the
    # version it named is free for other prices.
    catalog["version"] = "never-served"
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps(catalog))
    taken = server()
    failed = subprocess.run([str(billing_binary()), "serve", "--listen", f"127.0.0.1:{taken.port}", "--db", str(s.db_path),
                             "--catalog", str(typo)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert 0 < failed.returncode < 128 and "Address already in use" in failed.stderr, failed.stderr
    catalog["models"]["gpt-4o"]["input_micros_per_million_tokens"] += 1  # the typo fixed
    typo.write_text(json.dumps(catalog))
    fixed = server(args=["--catalog", str(typo)], db=s.db_path)
    fixed.terminate()
    assert fixed.wait_exit(10) == 0
    catalog["version"] = "pinned-2"
    changed.write_text(json.dumps(catalog))
    newer = server(args=["--catalog", str(changed)], db=s.db_path)
    newer.assert_serving()


def test_sql_metacharacters_are_just_ids(billing, verify):
    b = billing
    b.create("acme", credits=1_000_000)
    kept = b.debit("acme", "k1", [b.tool("slack", 1)])
    assert_refused(b, b.request(DROP_TABLE, "k1", [b.tool("slack", 1)]), grpc.StatusCode.NOT_FOUND,
                   "ACCOUNT_NOT_FOUND")
    b.create(DROP_TABLE, credits=1_000_000)
    key, run = "k'); DELETE FROM journal; --", 'r" OR 1=1; --'
    r = b.debit(DROP_TABLE, key, [b.tool("slack", 2)], run=run, workspace="w'--", agent="a%_*")
    assert r.balance_after_micros == 998_000
    assert b.get_debit(DROP_TABLE, key).debit == r
    assert [d.idempotency_key for d in b.execution_cost(DROP_TABLE, run).debits] == [key]
    assert [x.agent_id for x in b.usage(DROP_TABLE, ["agent"]).buckets] == ["a%_*"]
    assert b.get_debit(DROP_TABLE, "k1").outcome == b.pb.metering_pb2.DEBIT_OUTCOME_REFUSED
    # Nothing else was touched.
    assert b.get_debit("acme", "k1").debit == kept
    assert b.balance("acme") == 999_000
    assert b.get_debit("acme", "%").outcome == b.pb.metering_pb2.DEBIT_OUTCOME_UNKNOWN
    assert b.get_debit(DROP_TABLE, "k%").outcome == b.pb.metering_pb2.DEBIT_OUTCOME_UNKNOWN
    verify(b.served.db_path)


# --------------------------------------------------------------------------
# DebitBatch


def test_batch_mixes_accepted_invalid_and_refused_in_order(billing):
    b = billing
    grant = 10_000
    b.create("acme", credits=grant)
    b.create("solo", plan="free", credits=grant)
    b.debit("solo", "s0", [b.tool("slack", 1)], workspace="ws-1")
    a1 = b.request("acme", "k1", [b.tool("slack", 3)])                        # 3,000
    requests = [
        a1,
        b.request("acme", "k2", [b.llm("gpt-4o", -5)]),                      # invalid
        b.request("ghost", "k3", [b.tool("slack", 1)]),                       # unknown account
        b.request("acme", "k4", [b.tool("slack", 8)]),                        # 8,000 > 7,000
        b.request("acme", "k5", [b.tool("http", 4)], run="r2"),             # 2,000
        a1,                                                                   # same key, same request
        b.request("acme", "k1", [b.tool("slack", 4)]),                        # same key, other request
        b.request("solo", "s1", [b.tool("slack", 1)], workspace="ws-2"),      # Free, second workspace
        b.request("acme", "k6", [b.llm("nope", 1)]),                          # unknown model
        b.request("acme", "k7", [b.tool("slack", 5)]),                        # exactly the 5,000 left
    ]
    results = b.batch(requests)
    outcomes = [r.WhichOneof("outcome") for r in results]
    assert outcomes == ["accepted", "refused", "refused", "refused", "accepted", "accepted", "refused", "refused",
                        "refused", "accepted"], results
    reasons = {i: (results[i].refused.code, results[i].refused.reason) for i, o in enumerate(outcomes)
               if o == "refused"}
    assert reasons == {
        1: (INVALID_ARGUMENT, "NEGATIVE_QUANTITY"), 2: (NOT_FOUND, "ACCOUNT_NOT_FOUND"),
        3: (FAILED_PRECONDITION, "INSUFFICIENT_CREDITS"), 6: (ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED"),
        7: (FAILED_PRECONDITION, "WORKSPACE_LIMIT"), 8: (INVALID_ARGUMENT, "UNKNOWN_MODEL"),
    }
    assert all(results[i].refused.message for i in reasons)
    assert "nope" in results[8].refused.message
    assert results[5].accepted == results[0].accepted
    assert [results[i].accepted.balance_after_micros for i in (0, 4, 9)] == [7_000, 5_000, 0]
    entry_ids = [results[i].accepted.entry_id for i in (0, 4, 9)]
    assert entry_ids == sorted(set(entry_ids))
    assert b.balance("acme") == 0 and b.usage_total("acme") == grant
    assert b.balance("solo") == grant - 1_000

    # A retried batch gets the same results and charges nothing more.
    again = b.batch(requests)
    assert list(again) == list(results)
    assert b.balance("acme") == 0 and b.usage_total("acme") == grant
    # Each outcome is settled by its key (the invalid ones never reached the ledger).
    m = b.pb.metering_pb2
    assert b.get_debit("acme", "k2").outcome == m.DEBIT_OUTCOME_UNKNOWN
    assert b.get_debit("acme", "k6").outcome == m.DEBIT_OUTCOME_UNKNOWN
    assert b.get_debit("ghost", "k3").refusal.reason == "ACCOUNT_NOT_FOUND"
    assert b.get_debit("acme", "k4").refusal.reason == "INSUFFICIENT_CREDITS"
    assert b.get_debit("acme", "k1").debit == results[0].accepted
    assert b.get_debit("acme", "k7").debit == results[9].accepted
    # Unary retries agree with the batch.
    assert b.debit_request(requests[4]) == results[4].accepted
    assert_refused(b, requests[3], grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")


def test_a_full_journal_queue_refuses_what_does_not_fit_and_records_nothing(pb, server, verify):
    """`--max-queued-entries`: past that many entries waiting for the
    journal, debits are refused RESOURCE_EXHAUSTED LEDGER_OVERLOADED with
    nothing recorded (issue 3: "when the queue is full callers get
    RESOURCE_EXHAUSTED instead of unbounded memory"). A batch queues its
    debits and wakes the journal after its last, so one of 100 debits with
    room for 10 has at least its last 90 refused; retried, they are
    accepted."""
    served = server(args=["--max-queued-entries", "10"])
    b = Billing(pb, served)
    b.create("acme", plan="pro", credits=1_000_000)
    before = b.snapshot("acme")
    requests = [b.request("acme", f"k{i}", [b.tool("slack", 1)], run=f"r{i}") for i in range(100)]
    results = b.batch(requests)
    outcomes = [r.WhichOneof("outcome") for r in results]
    assert outcomes[:10] == ["accepted"] * 10, outcomes
    refused = [i for i, o in enumerate(outcomes) if o == "refused"]
    assert refused and refused[-1] == 99, outcomes
    for i in refused:
        assert (results[i].refused.code, results[i].refused.reason) == (RESOURCE_EXHAUSTED, "LEDGER_OVERLOADED"), results[i]
        assert "retry" in results[i].refused.message
        # Not recorded: the key settles as unknown, free for the retry.
        assert b.get_debit("acme", f"k{i}").outcome == b.pb.metering_pb2.DEBIT_OUTCOME_UNKNOWN
    accepted = len(outcomes) - len(refused)
    assert b.balance("acme") == before[0] - 1_000 * accepted
    assert b.usage_total("acme") == 1_000 * accepted
    # Retried (each batch within the bound), every debit is charged once.
    for start in range(0, 100, 10):
        again = b.batch(requests[start:start + 10])
        assert all(r.WhichOneof("outcome") == "accepted" for r in again), again
    assert b.balance("acme") == before[0] - 100_000 and b.usage_total("acme") == 100_000
    verify(served.db_path)


def test_batch_limits(billing):
    b = billing
    b.create("acme", plan="pro", credits=1_000_000)
    m = b.pb.metering_pb2
    before = b.snapshot("acme")
    per = [b.tool("http", 1)]
    too_many = [b.request("acme", f"k{i}", per, run=f"r{i % 50}") for i in range(8193)]
    code, info, details = b.refusal(b.metering.DebitBatch, m.DebitBatchRequest(debits=too_many))
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "BATCH_TOO_LARGE"), details
    code, info, details = b.refusal(b.metering.DebitBatch, m.DebitBatchRequest())
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD"), details
    b.assert_unchanged("acme", before)
    assert b.get_debit("acme", "k0").outcome == m.DEBIT_OUTCOME_UNKNOWN
    # Counted on the wire before decoding: 4 MB of empty debits (two bytes
    # each, two million of them) would have decoded into ~200 MB of structs.
    def peak_kib():
        status = open(f"/proc/{b.served.proc.pid}/status").read()
        return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    start = peak_kib()
    raw = b.served.authorized_channel().unary_unary("/billing.v1.Metering/DebitBatch",
                                                  request_serializer=lambda x: x, response_deserializer=lambda x: x)
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as refused:
            raw(b"\x0a\x00" * 2_000_000, timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
        assert b.error_info(refused.value).reason == "BATCH_TOO_LARGE"
    assert peak_kib() - start < 64 * 1024, f"peak memory grew {peak_kib() - start} KiB"
    # 8,192 is fine: each charged once (500 each, 400,000 from credits, the rest overage).
    results = b.batch(too_many[:8192])
    assert all(r.WhichOneof("outcome") == "accepted" for r in results)
    assert len({r.accepted.entry_id for r in results}) == 8192
    assert sum(r.accepted.covered_by_credits_micros for r in results) == 1_000_000
    assert sum(r.accepted.overage_micros for r in results) == 8192 * 500 - 1_000_000
    assert b.balance("acme") == 0
    assert b.usage_total("acme") == 8192 * 500
    assert b.execution_cost("acme", "r0").total_micros == len(range(0, 8192, 50)) * 500


# --------------------------------------------------------------------------
# GetDebit


def test_get_debit_of_a_never_used_key_is_unknown(billing):
    b = billing
    b.create("acme", credits=1_000)
    b.debit("acme", "used", [b.tool("slack", 1)])
    m = b.pb.metering_pb2
    for account, key in [("acme", "never-used"), ("acme", "USED"), ("other", "used")]:
        settled = b.get_debit(account, key)
        assert settled.outcome == m.DEBIT_OUTCOME_UNKNOWN, (account, key)
        assert settled.WhichOneof("result") is None, (account, key)
    for request, reason in [(m.GetDebitRequest(account_id="acme"), "MISSING_FIELD"),
                            (m.GetDebitRequest(idempotency_key="used"), "MISSING_FIELD"),
                            (m.GetDebitRequest(account_id="acme", idempotency_key="k" * 257), "FIELD_TOO_LONG"),
                            # A key cannot end in a space (it would print as "used").
                            (m.GetDebitRequest(account_id="acme", idempotency_key="used "), "INVALID_FIELD")]:
        code, info, _ = b.refusal(b.metering.GetDebit, request)
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason), request


# --------------------------------------------------------------------------
# Numbers at the edge of int64: an exact answer or a named refusal, never a
# crash and never a wrapped (negative) figure.


END_OF_YEAR_9999 = 253402300800   # 10000-01-01T00:00:00Z: usage is kept per UTC day up to here


def test_usage_range_ending_far_in_the_future(billing):
    """A range may end anywhere up to the end of year 9999 (the whole range
    answered exactly); past it, or empty at int64's end, INVALID_RANGE —
    never a crash, never a wrapped figure."""
    b = billing
    b.create("acme", credits=1_000_000)
    b.debit("acme", "k1", [b.tool("slack", 1)])
    usage = b.usage("acme", ["day"], to_unix=END_OF_YEAR_9999)
    assert (usage.from_unix_seconds, usage.to_unix_seconds, usage.total_micros) == (0, END_OF_YEAR_9999, 1_000)
    assert b.usage("acme", ["day"], from_unix=END_OF_YEAR_9999, to_unix=END_OF_YEAR_9999).total_micros == 0
    for from_unix, to_unix in [(0, END_OF_YEAR_9999 + 1), (0, INT64_MAX - 86_400 + 1), (0, INT64_MAX),
                               (INT64_MAX - 1, INT64_MAX)]:
        code, info, details = b.refusal(b.metering.GetUsage, b.pb.metering_pb2.GetUsageRequest(
            account_id="acme", from_unix_seconds=from_unix, to_unix_seconds=to_unix))
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_RANGE"), (to_unix, details)
    b.served.assert_serving()


def assert_usage_exact(b, account):
    """Every grouping's buckets are the accepted debits' (the test's own
    sums, in Python's unbounded integers), adding up to the total."""
    debits_total = sum(r.total_micros for _, r in b.debits_of(account))
    for group_by in GROUPINGS:
        usage = b.usage(account, group_by)
        assert list(usage.buckets) == b.expected_buckets(account, group_by), f"group_by {group_by}"
        assert usage.total_micros == debits_total == sum(x.amount_micros for x in usage.buckets), f"group_by {group_by}"


def test_usage_amounts_near_int64_are_exact(pb, server, tmp_path):
    """Pro accrues overage without credits, so debits of 8 × 10^18 micros
    each are within reach of a metering caller on a steep catalog. What an
    account is charged in all stays within int64 (a debit past it is refused,
    AMOUNT_TOO_LARGE, recording nothing), so usage grouped any way is exact:
    here two agents' buckets together hold int64's largest amount but for
    2,775,807 micros."""
    b = steep_billing(pb, server, tmp_path)
    b.create("acme", plan="pro")
    first = b.debit("acme", "k1", [b.llm("steep", MAX_TOKENS, MAX_TOKENS)], agent="a1", run="r1")
    assert (first.total_micros, first.overage_micros) == (8 * 10**18, 8 * 10**18)
    tokens = (INT64_MAX - first.total_micros) // 4_000_000           # steep: 4,000,000 micros a token
    second = b.debit("acme", "k2", [b.llm("steep", tokens, 0)], agent="a2", run="r2")
    assert second.total_micros == tokens * 4_000_000 == 1_223_372_036_852_000_000
    assert second.overage_micros == second.total_micros   # this debit's overage: no credits
    assert first.total_micros + second.total_micros == INT64_MAX - 2_775_807
    # One more steep token does not fit; a tool call still does.
    before = b.snapshot("acme")
    code, info, details = b.refused_debit(b.request("acme", "k3", [b.llm("steep", 1, 0)], agent="a2", run="r2"))
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_TOO_LARGE"), details
    assert b.get_debit("acme", "k3").outcome == b.pb.metering_pb2.DEBIT_OUTCOME_UNKNOWN
    b.assert_unchanged("acme", before, "a debit past int64")
    third = b.debit("acme", "k4", [b.tool("slack", 1)], agent="a2", run="r2")
    assert third.overage_micros == third.total_micros == 1_000
    assert_usage_exact(b, "acme")
    assert b.usage_total("acme") == INT64_MAX - 2_774_807
    assert b.execution_cost("acme", "r2").total_micros == second.total_micros + 1_000
    b.served.assert_serving()


def test_amounts_beyond_int64_are_refused_exactly_where_they_begin(pb, server, tmp_path):
    """Credits granted on top: the first debit draws them, the rest is
    overage; what is charged in all stays within int64 whether credits or
    overage paid it. Debits of one run: its cost is exact too."""
    b = steep_billing(pb, server, tmp_path)
    # The largest grant (session 27: grants stop at $1,000,000; this test
    # granted Int64.max); debits of 8 × 10^18 then run into the account's
    # bound on what it is charged in all.
    credits = 1_000_000_000_000
    b.create("acme", plan="pro", credits=credits)
    nine = [b.llm("steep", MAX_TOKENS, MAX_TOKENS)]   # 8 × 10^18 micros
    assert b.quote("acme", nine).total_micros == 8 * 10**18
    first = b.debit("acme", "k0", nine, agent="a1", run="r1")
    assert (first.covered_by_credits_micros, first.overage_micros, first.balance_after_micros) == (
        credits, 8 * 10**18 - credits, 0)
    before = b.snapshot("acme")
    for i, agent in enumerate(["a1", "a2"], start=1):
        code, info, details = b.refused_debit(b.request("acme", f"k{i}", nine, agent=agent, run="r1"))
        assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_TOO_LARGE"), details
    b.assert_unchanged("acme", before, "debits past int64")
    tokens = (INT64_MAX - 8 * 10**18) // 4_000_000
    last = b.debit("acme", "k3", [b.llm("steep", tokens, 0)], agent="a2", run="r1")
    assert last.overage_micros == last.total_micros   # the credits went to the first
    assert first.total_micros + last.total_micros == INT64_MAX - 2_775_807
    cost = b.execution_cost("acme", "r1")
    assert [d.entry_id for d in cost.debits] == [first.entry_id, last.entry_id]
    assert cost.total_micros == INT64_MAX - 2_775_807
    assert_usage_exact(b, "acme")
    b.served.assert_serving()


def test_batch_debit_that_cannot_be_applied_is_refused_on_its_own(pb, server, tmp_path):
    """A debit whose overage no longer fits in int64 is refused; in a batch it
    is refused on its own: the others get their own results and the call
    succeeds."""
    b = steep_billing(pb, server, tmp_path)
    b.create("acme", plan="pro")
    nine = [b.llm("steep", MAX_TOKENS, MAX_TOKENS)]   # 8 × 10^18 micros of overage
    first = b.debit("acme", "k0", nine)
    assert (first.overage_micros, first.balance_after_micros) == (8 * 10**18, 0)
    # The same again no longer fits in the account's overage.
    code, info, details = b.refused_debit(b.request("acme", "k-over", nine))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert b.get_debit("acme", "k-over").outcome == b.pb.metering_pb2.DEBIT_OUTCOME_UNKNOWN
    requests = [b.request("acme", "k1", [b.tool("slack", 1)]), b.request("acme", "k2", nine),
                b.request("acme", "k3", [b.tool("slack", 2)])]
    results = b.batch(requests)
    assert [r.WhichOneof("outcome") for r in results] == ["accepted", "refused", "accepted"], results
    assert results[1].refused.code == INVALID_ARGUMENT
    assert b.usage_total("acme") == 8 * 10**18 + 3_000


# --------------------------------------------------------------------------
# Where Debit, Quote, GetUsage and GetExecutionCost run: the ledger lives on
# the first event loop. A call arriving there enters it synchronously; one on
# another loop continues as a task that awaits it; a request over 64 KiB runs
# on the pool.

@pytest.mark.parametrize("threads", [1, 3])
def test_debits_from_every_loop_are_charged_once_and_reconcile(pb, server, verify, threads):
    served = server(args=["--threads", str(threads)])
    b = Billing(pb, served)
    grant = 50_000_000
    accounts = [b.create(f"acct-{i}", plan="pro", credits=grant) for i in range(4)]
    poor = b.create("poor", plan="free")
    item = b.tool("slack", 1)  # 1000 micros
    # Eight connections (grpcio shares one between channels to the same
    # target unless each has its own subchannel pool).
    channels = [served.authorized_channel(options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(8)]
    stubs = [pb.metering_pb2_grpc.MeteringStub(c) for c in channels]

    def work(index):
        stub = stubs[index % len(stubs)]
        account = accounts[index % len(accounts)]
        request = b.request(account, f"k-{index % 150}", [item], run=f"r-{index % 150 % 7}")
        response = stub.Debit(request, timeout=RPC_TIMEOUT_S)  # keys repeat: retries, some on other loops
        quote = stub.Quote(pb.metering_pb2.QuoteRequest(account_id=account, line_items=[item]), timeout=RPC_TIMEOUT_S)
        assert quote.would_accept and quote.total_micros == 1000
        with pytest.raises(grpc.RpcError) as refused:
            stub.Debit(b.request(poor, f"poor-{index}", [item]), timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert b.error_info(refused.value).reason == "INSUFFICIENT_CREDITS"
        if index % 10 == 0:  # the queries: on the ledger's loop, or a task from another
            m = pb.metering_pb2
            usage = stub.GetUsage(m.GetUsageRequest(account_id=account), timeout=RPC_TIMEOUT_S)
            assert usage.total_micros >= 1000
            cost = stub.GetExecutionCost(m.GetExecutionCostRequest(account_id=account, run_id=request.run_id),
                                         timeout=RPC_TIMEOUT_S)
            assert cost.total_micros >= 1000 and response.entry_id in [d.entry_id for d in cost.debits]
            with pytest.raises(grpc.RpcError) as missing:
                stub.GetUsage(m.GetUsageRequest(account_id="nobody"), timeout=RPC_TIMEOUT_S)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        return request, response

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, range(600)))
    by_key = {}
    for request, response in results:
        key = (request.account_id, request.idempotency_key)
        assert by_key.setdefault(key, response.entry_id) == response.entry_id, f"{key} charged twice"
    for account in accounts:
        charged = sum(1 for (a, _) in by_key if a == account)
        assert b.balance(account) == grant - 1000 * charged
    assert b.balance(poor) == 0

    # Over 64 KiB: the pool, same answer.
    big = [b.tool("i" * 250 + f"{n:03d}", 1) for n in range(256)]
    request = b.request(accounts[0], "big", big)
    assert request.ByteSize() > 64 << 10
    response = stubs[0].Debit(request, timeout=RPC_TIMEOUT_S)
    assert response.total_micros == 256 * 2000  # unlisted integrations: the default price
    quote = stubs[1].Quote(pb.metering_pb2.QuoteRequest(account_id=accounts[0], line_items=big), timeout=RPC_TIMEOUT_S)
    assert quote.total_micros == 256 * 2000
    for c in channels:
        c.close()
    verify(served.db_path)
    # With three loops, calls ran on a loop other than the ledger's (the
    # task path; with one loop every call entered the ledger synchronously):
    # connections are served by the loops in turn, so all three served some.
    loops = set(re.findall(r"loop=(\d+).*connection accepted", served.log()))
    assert len(re.findall(r"connection accepted", served.log())) >= 8
    if threads == 3:
        assert loops == {"0", "1", "2"}, f"connections were served by loops {sorted(loops)} only"


def test_retries_of_keys_that_left_memory_answer_the_original(pb, server, verify):
    """With a checkpoint every 20 entries the first debits' keys leave memory:
    their retries are told apart by SQLite (on the pool, never on the loop)
    and answered with the original outcome; a reuse with another request is
    refused; nothing is charged twice."""
    served = server(args=["--threads", "1", "--checkpoint-every", "20"])
    b = Billing(pb, served)
    grant = 10_000_000
    b.create("acme", plan="pro", credits=grant)
    item = b.tool("slack", 1)
    originals = [b.metering.Debit(b.request("acme", f"k-{i}", [item], run=f"r-{i % 5}"), timeout=RPC_TIMEOUT_S)
                 for i in range(120)]
    for i in range(0, 120, 7):
        again = b.metering.Debit(b.request("acme", f"k-{i}", [item], run=f"r-{i % 5}"), timeout=RPC_TIMEOUT_S)
        assert again == originals[i], f"k-{i}"
    code, info, _ = b.refusal(b.metering.Debit, b.request("acme", "k-3", [b.tool("slack", 2)], run="r-3"))
    assert code == grpc.StatusCode.ALREADY_EXISTS and info.reason == "IDEMPOTENCY_KEY_REUSED", info
    assert b.balance("acme") == grant - 120 * 1000
    verify(served.db_path)


def test_sigterm_under_debit_load_on_three_loops_closes_the_ledger(pb, server, verify):
    """SIGTERM while debits arrive on every loop: the loops drain and stop,
    the ledger (which ran on loop 0) still writes its final checkpoint, the
    process exits 0, and a restart replays nothing and finds every
    acknowledged debit."""
    served = server(args=["--threads", "3", "--log-level", "info"], drain_seconds=3)
    b = Billing(pb, served)
    b.create("acme", plan="pro", credits=100_000_000)
    item = b.tool("slack", 1)
    stubs = [pb.metering_pb2_grpc.MeteringStub(served.authorized_channel(options=[("grpc.use_local_subchannel_pool", 1)]))
             for _ in range(9)]
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def work(worker):
        n = 0
        while not stop.is_set():
            key = f"w{worker}-{n}"
            n += 1
            try:
                response = stubs[worker].Debit(b.request("acme", key, [item]), timeout=RPC_TIMEOUT_S)
            except grpc.RpcError:
                return  # the shutdown: GOAWAY, UNAVAILABLE
            with lock:
                acknowledged.append((key, response.entry_id))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(9)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(acknowledged) >= 300, "the load did not get going"
    served.terminate()
    assert served.wait_exit(timeout=15) == 0, served.log_tail()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    log = served.log()
    assert "stopped" in log and "checkpoint written" in log.split("shutting down", 1)[1], served.log_tail()

    again = server(db=served.db_path, args=["--log-level", "info"])
    recovered = re.search(r"replayed_entries=(\d+)", again.log())
    assert recovered and recovered.group(1) == "0", again.log_tail()
    again.credentials_path = served.credentials_path  # the same database: the same service key
    after = Billing(pb, again)
    for key, entry_id in acknowledged:
        assert after.get_debit("acme", key).debit.entry_id == entry_id, key
    verify(again.db_path)


def debit_decided_under_a_held_write_lock(b):
    """Account acme with a debit, then another debit (k1) decided in memory
    (Quote sees it) while this process holds SQLite's write lock, so its
    commit waits (busy_timeout: 5 s). Returns (usage before, balance before,
    the lock's connection — roll it back and close it —, the pending Debit)."""
    import sqlite3
    b.create("acme", credits=100_000_000)
    b.debit("acme", "k0", [b.tool("github", 1)])
    usage_before, balance_before = b.usage_total("acme"), b.balance("acme")
    holder = sqlite3.connect(b.served.db_path, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        pending = b.metering.Debit.future(b.request("acme", "k1", [b.tool("github", 2)]), timeout=30)
        deadline = time.monotonic() + 3
        while b.balance("acme") == balance_before:
            assert time.monotonic() < deadline, "the debit was never decided"
    except BaseException:
        holder.execute("ROLLBACK")
        holder.close()
        raise
    return usage_before, balance_before, holder, pending


def test_reads_made_while_a_debit_commits_never_show_it_when_its_commit_fails(billing):
    """The failing side of the test below, without timing: while another
    process holds SQLite's write lock past the journal's busy timeout (5 s),
    a debit is decided in memory (Quote sees it) and its commit then fails.
    GetUsage and GetAccount calls made meanwhile (long deadlines) must not
    answer with it: each fails or answers the books without it. A read
    answered from memory would show the charge the failed commit took back."""
    b = billing
    a = b.pb.accounts_pb2
    usage_before, balance_before, holder, pending = debit_decided_under_a_held_write_lock(b)
    try:
        reads = [b.metering.GetUsage.future(b.pb.metering_pb2.GetUsageRequest(account_id="acme"), timeout=30),
                 b.accounts.GetAccount.future(a.GetAccountRequest(account_id="acme"), timeout=30)]
        with pytest.raises(grpc.RpcError) as failed:
            pending.result()  # the commit gives up after the busy timeout, the lock still held
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    usage, account = reads
    try:
        assert usage.result().total_micros == usage_before, "GetUsage counted a debit whose commit failed"
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    try:
        assert account.result().account.credit_balance_micros == balance_before, "GetAccount showed a debit whose commit failed"
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    deadline = time.monotonic() + 10
    while True:  # the ledger reloads from the journal after the failure
        try:
            assert b.usage_total("acme") == usage_before
            break
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, error
            time.sleep(0.05)
    assert b.balance("acme") == balance_before


def test_reads_wait_for_the_commit_of_the_debits_they_count(billing):
    """GetUsage and GetAccount answer only what is durable. While a debit's
    commit is held up (another process holds SQLite's write lock, as a long
    checkpoint or a slow disk would), the debit is already decided in memory
    (Quote sees it); a read that would count it waits for its commit instead
    of showing a charge a failing commit would take back (the test above),
    and answers with it once the commit goes through — not without it, as a
    read of the durable books that did not wait would. No timing: the reads
    are sent before a Quote on the same connection, which the server takes
    in order, and the lock is held until that Quote is answered."""
    b = billing
    a = b.pb.accounts_pb2
    usage_before, balance_before, holder, pending = debit_decided_under_a_held_write_lock(b)
    try:
        reads = [b.metering.GetUsage.future(b.pb.metering_pb2.GetUsageRequest(account_id="acme"), timeout=30),
                 b.accounts.GetAccount.future(a.GetAccountRequest(account_id="acme"), timeout=30)]
        assert b.balance("acme") < balance_before, "the debit is decided in memory"
        assert not any(read.done() for read in reads), \
            f"a read answered while the debit it counts was not durable: {[r.result() for r in reads if r.done()]}"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    charged = pending.result()
    b.remember(b.request("acme", "k1", [b.tool("github", 2)]), charged)
    usage, account = (read.result() for read in reads)
    assert usage.total_micros == usage_before + charged.total_micros, "GetUsage did not wait for the debit's commit"
    assert account.account.credit_balance_micros == balance_before - charged.total_micros, \
        "GetAccount did not wait for the debit's commit"
    assert b.usage_total("acme") == usage_before + charged.total_micros
    account = b.accounts.GetAccount(a.GetAccountRequest(account_id="acme"), timeout=RPC_TIMEOUT_S)
    assert account.account.credit_balance_micros == balance_before - charged.total_micros
