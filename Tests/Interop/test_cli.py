"""The command-line clients against the real server: `billing call` (JSON in,
JSON out, every unary RPC of schema/, compared with what grpcio decodes for
the same request) and `billing load` (a bounded load whose acknowledged
debits `billing verify` must find in the journal, exactly).

Every CLI run goes through `cli(...)`, which also checks that no caller
credential (the demo service key, the demo Owner token) ever appears in
standard output or standard error.
"""

import base64
import dataclasses
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory

from conftest import ROOT, RPC_TIMEOUT_S, SCHEMA, billing_binary, error_info

CLI_TIMEOUT_S = 60

# --------------------------------------------------------------------------
# The schema's unary methods, read from the .proto files themselves


def schema_unary_methods() -> list[str]:
    """`package.Service/Method` of every non-streaming rpc in schema/."""
    methods = []
    for proto in sorted(SCHEMA.rglob("*.proto")):
        text = re.sub(r"//[^\n]*", "", proto.read_text())
        package = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M)
        for service in re.finditer(r"\bservice\s+(\w+)\s*\{(.*?)\n\}", text, re.S):
            for rpc in re.finditer(r"\brpc\s+(\w+)\s*\(\s*(stream\s+)?[\w.]+\s*\)\s*returns\s*\(\s*(stream\s+)?",
                                   service.group(2)):
                if rpc.group(2) or rpc.group(3):
                    continue  # streaming (Health/Watch): not a `billing call` method
                methods.append(f"{package.group(1)}.{service.group(1)}/{rpc.group(1)}")
    return methods


SCHEMA_METHODS = schema_unary_methods()

# Methods that answer OK to the requests below. The others (CancelPendingChange,
# PayInvoice, AdvanceClock) refuse them, and `billing call` must print the same
# refusal; no method may answer UNIMPLEMENTED.
IMPLEMENTED = {
    "billing.v1.Accounts/CreateAccount", "billing.v1.Accounts/GetAccount", "billing.v1.Accounts/GetBanners",
    "billing.v1.Accounts/ListPlans",
    "billing.v1.Accounts/ChangePlan", "billing.v1.Admin/SetEnterpriseContract",
    "billing.v1.Payments/PurchaseCredits", "billing.v1.Payments/SetPaymentMethod", "billing.v1.Payments/GetPaymentMethod",
    "billing.v1.Payments/ListCharges", "billing.v1.Payments/ListInvoices", "billing.v1.Payments/GetInvoicePdf",
    "billing.v1.Admin/GrantCredits", "billing.v1.Admin/CreateApiKey", "billing.v1.Admin/ListApiKeys",
    "billing.v1.Admin/RevokeApiKey", "billing.v1.Admin/ListAuditLog",
    "billing.v1.Metering/Quote", "billing.v1.Metering/Debit", "billing.v1.Metering/DebitBatch",
    "billing.v1.Metering/GetExecutionCost", "billing.v1.Metering/GetDebit", "billing.v1.Metering/GetUsage",
    "billing.v1.Testing/Echo", "grpc.health.v1.Health/Check", "grpc.health.v1.Health/List",
}


def message_classes(method: str):
    """(request class, response class) of `package.Service/Method`, from the
    descriptors the generated stubs (pb fixture) and grpc_health registered."""
    service, name = method.split("/")
    descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    return (message_factory.GetMessageClass(descriptor.input_type),
            message_factory.GetMessageClass(descriptor.output_type))


# --------------------------------------------------------------------------
# Running the CLI

# Every caller credential a test handed to the CLI; none may appear in output.
SECRETS: set[str] = set()


def remember_secret(token: str) -> str:
    SECRETS.add(token)
    if token.startswith("bk_") and token.count("_") >= 2:
        SECRETS.add(token.split("_", 2)[2])  # the secret part of bk_<key id>_<secret> alone
    return token


def cli(*args, key: str | None = None, stdin: str | None = None, timeout: float = CLI_TIMEOUT_S
        ) -> subprocess.CompletedProcess:
    """`billing ARGS` with BILLING_KEY=key (unset when None); asserts that no
    known credential is in its standard output or error."""
    env = dict(os.environ)
    env.pop("BILLING_KEY", None)
    if key is not None:
        env["BILLING_KEY"] = key
    result = subprocess.run([str(billing_binary()), *map(str, args)], cwd=ROOT, env=env, input=stdin,
                            capture_output=True, text=True, timeout=timeout)
    for secret in SECRETS:
        assert secret not in result.stdout, f"billing {args[0]} printed a credential on standard output"
        assert secret not in result.stderr, f"billing {args[0]} printed a credential on standard error"
    return result


def shown(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def call(served, method: str, request, *, key=None, extra=()) -> subprocess.CompletedProcess:
    """`billing call --target SERVER METHOD -d JSON` with BILLING_KEY = the demo service key."""
    data = request if isinstance(request, str) else json.dumps(request)
    return cli("call", "--target", served.target, method, "-d", data, *extra,
               key=served.service_key() if key is None else key)


def grpc_call(channel, method: str, request: dict):
    """The same call through grpcio: (response, None) or (None, RpcError)."""
    request_class, response_class = message_classes(method)
    stub = channel.unary_unary("/" + method, request_serializer=request_class.SerializeToString,
                               response_deserializer=response_class.FromString)
    try:
        return stub(json_format.ParseDict(request, request_class()), timeout=RPC_TIMEOUT_S), None
    except grpc.RpcError as error:
        return None, error


def assert_failure_printed(pb, result, error):
    """`billing call` exited 2 and printed, on standard error, what grpcio saw:
    status name, message, and the ErrorInfo's reason, domain and metadata."""
    assert result.returncode == 2, shown(result)
    assert result.stdout == "", shown(result)
    name = error.code().name
    assert re.search(rf"\b{name}\b", result.stderr), f"status {name} not printed:\n{shown(result)}"
    assert error.details() in result.stderr, f"message {error.details()!r} not printed:\n{shown(result)}"
    info = error_info(pb, error)
    if info is not None:
        lines = result.stderr.splitlines()
        assert f"  reason: {info.reason}" in lines, shown(result)
        assert f"  domain: {info.domain}" in lines, shown(result)
        for k, v in info.metadata.items():
            assert f"  {k}: {v}" in lines, shown(result)


# --------------------------------------------------------------------------
# Comparing responses


def close_enough(a, b, path="") -> list[str]:
    """Differences between two JSON values, allowing `*_unix_seconds` to differ
    by 5 s (twin requests made a moment apart)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k.endswith("_unix_seconds") and k in a and k in b and abs(int(a[k]) - int(b[k])) <= 5:
                continue
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'cli' if k in a else 'grpcio'}")
            else:
                out += close_enough(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} elements"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in close_enough(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} (cli) vs {b!r} (grpcio)"]


def renamed(pairs: dict[str, str]) -> Callable:
    """A normalizer for twin requests: the grpcio twin's ids become the CLI's."""
    def normalize(cli_json: dict, grpc_json: dict):
        text = json.dumps(grpc_json)
        for theirs, ours in pairs.items():
            text = text.replace(theirs, ours)
        return cli_json, json.loads(text)
    return normalize


def api_key_normalizer(names: dict[str, str]) -> Callable:
    """CreateApiKey / RevokeApiKey twins: different key ids (and secrets);
    the secret is bk_<key id>_<...> in both."""
    rename = renamed(names)

    def normalize(cli_json: dict, grpc_json: dict):
        cli_json, grpc_json = rename(cli_json, grpc_json)
        for j in (cli_json, grpc_json):
            key_id = j.get("key", {}).pop("key_id", None)
            assert key_id, j
            if "secret" in j:
                assert j.pop("secret").startswith(f"bk_{key_id}_"), j
        return cli_json, grpc_json
    return normalize


def payment_method_normalizer(cli_json: dict, grpc_json: dict):
    """SetPaymentMethod twins: two accounts, two methods with their own ids."""
    cli_json, grpc_json = renamed({"cli-pm-b": "cli-pm-a"})(cli_json, grpc_json)
    for j in (cli_json, grpc_json):
        assert j["current"].pop("payment_method_id").startswith("pm_"), j
    return cli_json, grpc_json


def clock_normalizer(cli_json: dict, grpc_json: dict):
    """AdvanceClock twins: the same step, from different instants."""
    for j in (cli_json, grpc_json):
        j["step"] = int(j.pop("now_unix_seconds", 0)) - int(j.pop("previous_unix_seconds", 0))
    return cli_json, grpc_json


@dataclasses.dataclass
class Case:
    request: dict
    # For calls that change state in a way a replay would not reproduce: the
    # request grpcio sends instead, and how to make the two answers comparable.
    twin: dict | None = None
    normalize: Callable | None = None


ITEMS = [{"llm": {"model": "gpt-4o", "input_tokens": "1200", "output_tokens": "300"}},
         {"tool_call": {"integration": "slack", "calls": "2"}},
         {"storage": {"kind": "STORAGE_KIND_TRACES", "bytes": "1048576"}}]
CARD = {"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "holder_name": "CLI Test"}}


def debit_request(key, run="cli-run-1", account="cli-acct"):
    return {"account_id": account, "workspace_id": "w1", "agent_id": "agent-cli", "run_id": run,
            "idempotency_key": key, "line_items": ITEMS}


# One request per method; the state they need is made by the `call_world`
# fixture. Calls that change state use an idempotency key (the grpcio call
# then replays the CLI's) or a twin request. AdvanceClock comes last.
CASES: dict[str, Case] = {
    "billing.v1.Accounts/CreateAccount": Case(
        {"account_id": "cli-new-a", "display_name": "CLI new", "billing_email": "cli@example.com",
         "initial_plan": "PLAN_PRO"},
        twin={"account_id": "cli-new-b", "display_name": "CLI new", "billing_email": "cli@example.com",
              "initial_plan": "PLAN_PRO"},
        normalize=renamed({"cli-new-b": "cli-new-a"})),
    "billing.v1.Accounts/GetAccount": Case({"account_id": "cli-acct"}),
    "billing.v1.Accounts/GetBanners": Case({"account_id": "cli-acct"}),
    "billing.v1.Accounts/ListPlans": Case({"account_id": "cli-acct"}),
    "billing.v1.Accounts/ChangePlan": Case(
        {"account_id": "cli-plan", "to_plan": "PLAN_FREE", "idempotency_key": "cli-plan-change-1"}),
    "billing.v1.Accounts/CancelPendingChange": Case({"account_id": "demo"}),
    "billing.v1.Admin/GrantCredits": Case(
        {"account_id": "cli-acct", "amount_micros": "2500000", "reason": "cli round trip",
         "idempotency_key": "cli-grant-rt"}),
    "billing.v1.Admin/SetEnterpriseContract": Case(
        {"account_id": "cli-ent", "contract": {"contract_reference": "C-1", "period_price_micros": "1000000000",
                                               "included_usage_micros": "500000000", "run_quota": "100000",
                                               "max_workspaces": "10", "usage_rate_basis_points": "9000"}}),
    "billing.v1.Admin/CreateApiKey": Case(
        {"name": "cli-made-a", "scopes": ["metering:read", "metering:write"]},
        twin={"name": "cli-made-b", "scopes": ["metering:read", "metering:write"]},
        normalize=api_key_normalizer({"cli-made-b": "cli-made-a"})),
    "billing.v1.Admin/ListApiKeys": Case({"include_revoked": True}),
    "billing.v1.Admin/RevokeApiKey": Case(
        {"key_id": "<revoke-a>"}, twin={"key_id": "<revoke-b>"},
        normalize=api_key_normalizer({"cli-revoke-b": "cli-revoke-a"})),
    "billing.v1.Admin/ListAuditLog": Case({"account_id": "cli-acct", "page_size": 50}),
    "billing.v1.Metering/Quote": Case(
        {"account_id": "cli-acct", "workspace_id": "w1", "agent_id": "agent-cli", "run_id": "cli-run-q",
         "line_items": ITEMS}),
    "billing.v1.Metering/Debit": Case(debit_request("cli-debit-rt")),
    "billing.v1.Metering/DebitBatch": Case(
        {"debits": [debit_request("cli-batch-1", run="cli-run-2"), debit_request("cli-batch-2", run="cli-run-2"),
                    {**debit_request("cli-batch-3"), "account_id": "nobody"}]}),
    "billing.v1.Metering/GetExecutionCost": Case({"account_id": "cli-acct", "run_id": "cli-run-1"}),
    "billing.v1.Metering/GetDebit": Case({"account_id": "cli-acct", "idempotency_key": "cli-seed-1"}),
    "billing.v1.Metering/GetUsage": Case(
        {"account_id": "cli-acct", "group_by": ["USAGE_GROUP_BY_DAY", "USAGE_GROUP_BY_AGENT",
                                                "USAGE_GROUP_BY_LINE_ITEM"]}),
    "billing.v1.Payments/PurchaseCredits": Case(
        {"account_id": "cli-acct", "amount_micros": "10000000", "idempotency_key": "cli-purchase-1"}),
    "billing.v1.Payments/SetPaymentMethod": Case(
        {"account_id": "cli-pm-a", "payment_method": CARD}, twin={"account_id": "cli-pm-b", "payment_method": CARD},
        normalize=payment_method_normalizer),
    "billing.v1.Payments/GetPaymentMethod": Case({"account_id": "cli-acct"}),
    "billing.v1.Payments/ListCharges": Case({"account_id": "cli-acct", "page_size": 20}),
    "billing.v1.Payments/ListInvoices": Case({"account_id": "cli-acct", "page_size": 20}),
    "billing.v1.Payments/GetInvoicePdf": Case({"account_id": "cli-acct", "invoice_id": "<invoice>"}),
    "billing.v1.Payments/PayInvoice": Case(
        {"account_id": "cli-acct", "invoice_id": "inv-none", "idempotency_key": "cli-pay-1"}),
    "billing.v1.Testing/Echo": Case({"payload": "aGVsbG8sIGJpbGxpbmcgAP8=", "delay_ms": 0}),
    "grpc.health.v1.Health/Check": Case({"service": "billing.v1.Metering"}),
    "grpc.health.v1.Health/List": Case({}),
    "billing.v1.Admin/AdvanceClock": Case({"seconds": "1"}, twin={"seconds": "1"}, normalize=clock_normalizer),
}


# --------------------------------------------------------------------------
# billing call


@pytest.fixture(scope="module")
def call_world(pb, module_server):
    """A server with what the round trips read: account cli-acct (Pro, credits,
    one debit `cli-seed-1` in run cli-run-1), accounts for twins, two keys to revoke."""
    s = module_server()
    remember_secret(s.service_key())
    remember_secret(s.owner_token())
    channel = s.authorized_channel()
    a, adm, m = pb.accounts_pb2, pb.admin_pb2, pb.metering_pb2
    accounts = pb.accounts_pb2_grpc.AccountsStub(channel)
    admin = pb.admin_pb2_grpc.AdminStub(channel)
    for account, plan in [("cli-acct", a.PLAN_PRO), ("cli-plan", a.PLAN_PRO), ("cli-ent", a.PLAN_ENTERPRISE),
                          ("cli-pm-a", a.PLAN_PRO), ("cli-pm-b", a.PLAN_PRO)]:
        accounts.CreateAccount(a.CreateAccountRequest(account_id=account, initial_plan=plan), timeout=RPC_TIMEOUT_S)
    admin.GrantCredits(adm.GrantCreditsRequest(account_id="cli-acct", amount_micros=1_000_000_000,
                                               reason="setup", idempotency_key="cli-setup"), timeout=RPC_TIMEOUT_S)
    pb.metering_pb2_grpc.MeteringStub(channel).Debit(
        json_format.ParseDict(debit_request("cli-seed-1"), m.DebitRequest()), timeout=RPC_TIMEOUT_S)
    payments = pb.payments_pb2_grpc.PaymentsStub(channel)
    p = pb.payments_pb2
    payments.SetPaymentMethod(json_format.ParseDict({"account_id": "cli-acct", "payment_method": CARD},
                                                    p.SetPaymentMethodRequest()), timeout=RPC_TIMEOUT_S)
    bought = payments.PurchaseCredits(p.PurchaseCreditsRequest(account_id="cli-acct", amount_micros=5_000_000,
                                                               idempotency_key="cli-world-buy"), timeout=RPC_TIMEOUT_S)
    revoke = {"<invoice>": bought.invoice.invoice_id}
    for name in ("cli-revoke-a", "cli-revoke-b"):
        made = admin.CreateApiKey(adm.CreateApiKeyRequest(name=name, scopes=["metering:read"]), timeout=RPC_TIMEOUT_S)
        revoke[f"<{name[4:]}>"] = made.key.key_id
    return s, channel, revoke


def test_list_names_every_unary_rpc_of_the_schema():
    result = cli("call", "--list")
    assert result.returncode == 0, shown(result)
    lines = result.stdout.splitlines()
    listed = [line.split()[0] for line in lines]
    assert len(listed) == len(set(listed)), listed
    # The one method a default server does not serve says so.
    assert [line for line in lines if "only with" in line] == [
        "billing.v1.Testing/Echo  (only with serve --enable-testing-service)"], lines
    assert set(listed) == set(SCHEMA_METHODS), (
        f"missing: {sorted(set(SCHEMA_METHODS) - set(listed))}, extra: {sorted(set(listed) - set(SCHEMA_METHODS))}")
    assert set(CASES) == set(SCHEMA_METHODS), "every method of the schema needs a round-trip case here"


def test_round_trip_covers_the_implemented_methods():
    assert IMPLEMENTED <= set(SCHEMA_METHODS)


@pytest.mark.parametrize("method", list(CASES))
def test_call_round_trips(pb, call_world, method):
    """`billing call METHOD -d JSON` answers what grpcio decodes for the same
    request: the JSON parses (json_format, no unknown fields) into a message
    equal to grpcio's response, and equals json_format's own rendering of it."""
    served, channel, placeholders = call_world
    case = CASES[method]

    def fill(request):
        text = json.dumps(request)
        for placeholder, value in placeholders.items():
            text = text.replace(placeholder, value)
        return json.loads(text)

    request = fill(case.request)
    result = call(served, method, request)
    response, error = grpc_call(channel, method, fill(case.twin) if case.twin is not None else request)

    # Every method of the schema is served: none may answer UNIMPLEMENTED.
    assert error is None or error.code() != grpc.StatusCode.UNIMPLEMENTED, \
        f"{method} answered UNIMPLEMENTED: {error.details()}"
    if error is not None:
        # The methods outside IMPLEMENTED refuse this request (no pending
        # change to cancel, no test clock...); the CLI must show the same refusal.
        assert method not in IMPLEMENTED, \
            f"grpcio refused the round-trip request: {error.code().name} {error.details()}"
        assert_failure_printed(pb, result, error)
        return

    assert result.returncode == 0, shown(result)
    assert result.stderr == "", shown(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"expected one line of JSON:\n{result.stdout}"
    _, response_class = message_classes(method)
    decoded = json_format.Parse(lines[0], response_class())  # raises on anything not in the schema
    printed = json.loads(lines[0])
    expected = json_format.MessageToDict(response, preserving_proto_field_name=True)
    if case.twin is None:
        assert decoded == response, f"billing call decoded:\n{decoded}\ngrpcio:\n{response}"
        assert printed == expected, f"billing call printed {printed}\njson_format gives {expected}"
    else:
        ours, theirs = case.normalize(json_format.MessageToDict(decoded, preserving_proto_field_name=True), expected)
        differences = close_enough(ours, theirs)
        assert not differences, f"{differences}\ncli: {result.stdout}\ngrpcio: {expected}"


def test_refusal_shows_status_message_and_error_info(pb, call_world):
    served, channel, _ = call_world
    request = {**debit_request("cli-refused-1"), "line_items": [{"llm": {"model": "no-such-model",
                                                                         "input_tokens": "10"}}]}
    result = call(served, "billing.v1.Metering/Debit", request)
    _, error = grpc_call(channel, "billing.v1.Metering/Debit", request)
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert result.returncode == 2, shown(result)
    assert "INVALID_ARGUMENT" in result.stderr and "reason: UNKNOWN_MODEL" in result.stderr, shown(result)
    assert_failure_printed(pb, result, error)

    # ErrorInfo metadata is printed too (NOT_FOUND carries the account id).
    request = {**debit_request("cli-refused-2"), "account_id": "cli-nobody"}
    result = call(served, "billing.v1.Metering/Debit", request)
    _, error = grpc_call(channel, "billing.v1.Metering/Debit", request)
    assert error is not None and error.code() == grpc.StatusCode.NOT_FOUND
    assert "reason: ACCOUNT_NOT_FOUND" in result.stderr, shown(result)
    assert_failure_printed(pb, result, error)


def test_missing_or_wrong_credentials_are_refused_by_the_server(pb, call_world):
    served, _, _ = call_world
    for key in ("", "bk_000000000000_not-a-real-secret"):
        result = call(served, "billing.v1.Metering/Quote", CASES["billing.v1.Metering/Quote"].request, key=key)
        assert result.returncode == 2, shown(result)
        assert "UNAUTHENTICATED" in result.stderr, shown(result)
    # The health check needs no credentials.
    result = call(served, "grpc.health.v1.Health/Check", {}, key="")
    assert result.returncode == 0 and json.loads(result.stdout) == {"status": "SERVING"}, shown(result)


def test_a_key_with_whitespace_is_refused_by_the_client_without_showing_it(call_world):
    """A key pasted with a space, or read from a CRLF file: no HTTP/2 header
    may carry it (the call ended with no status, "NO_STATUS (-1)", exit 2 —
    session 30); refused before any call, exit 64, the key not echoed."""
    served, _, _ = call_world
    good = served.service_key()
    for key, extra in ((good + " ", ()), (good + "\r", ()), ("garbage", ("--key", good + "\n"))):
        result = call(served, "billing.v1.Metering/Quote", CASES["billing.v1.Metering/Quote"].request, key=key, extra=extra)
        assert result.returncode == 64, shown(result)
        assert "whitespace or a control character" in result.stderr, shown(result)
        assert good.split("_")[-1] not in result.stderr + result.stdout, "the key was shown"
    # `billing load` too (it failed provisioning with "NO_STATUS").
    result = cli("load", "--target", served.target, "--requests", "1", key=good + "\r")
    assert result.returncode == 64 and "whitespace or a control character" in result.stderr, shown(result)
    assert good.split("_")[-1] not in result.stderr + result.stdout, "the key was shown"


def test_a_key_given_as_an_argument_is_refused_unshown(call_world):
    """`billing call METHOD "$KEY"` (or the key in METHOD's place, or a JWT):
    ArgumentParser's "Unexpected argument 'bk_…'" echoed the secret (session
    30); refused, exit 64, nothing of it shown."""
    served, _, _ = call_world
    good, owner = served.service_key(), served.owner_token()
    for args in (["billing.v1.Metering/Quote", good], [good], ["billing.v1.Metering/Quote", owner],
                 ["billing.v1.Metering/Quote", "Bearer", good]):
        result = cli("call", "--target", served.target, *args, key="")
        assert result.returncode == 64, shown(result)
        assert "holds an API key or a user token" in result.stderr, shown(result)
        assert good.split("_")[-1] not in result.stderr + result.stdout and owner.split(".")[-1] not in result.stderr, \
            "a secret was shown"
    # `billing <key>` and `billing keys <key>` too: no leaf command to take
    # it, ArgumentParser's own error echoed it (session 31).
    for args in (["verify", "--db", str(served.db_path), good], ["audit", "--db", str(served.db_path), "Bearer " + good],
                 [good], ["keys", good], ["keys", owner]):
        result = cli(*args)
        assert result.returncode == 64 and "not shown" in result.stderr, shown(result)
        assert good.split("_")[-1] not in result.stderr + result.stdout and owner.split(".")[-1] not in result.stderr, \
            "a secret was shown"
    # Given as an option's value — joined with "=" (the message quoted the
    # value), or as --db (serve made a database named after it and logged
    # its path) — it is not shown either (session 31, a review).
    for args, code in ((["keys", "list", f"--db={good}"], 64), (["audit", f"--db={good}"], 64),
                       (["serve", f"--synchronous={good}"], 64), (["keys", "create", f"--scope={owner}", "--name=x"], 64),
                       (["verify", "--db", good], 2), (["serve", "--db", good, "--listen", "127.0.0.1:0"], 1),
                       (["keys", "list", "--db", good], 64), (["serve", "--port-file", good], 64),
                       (["serve", "--demo-credentials-file", owner], 64),
                       (["keys", "create", "--db", "x.sqlite", "--name", good, "--scope", "metering:read"], 64)):
        result = cli(*args, timeout=30)
        assert result.returncode == code and "not shown" in result.stderr, shown(result)
        assert good.split("_")[-1] not in result.stderr + result.stdout and owner.split(".")[-1] not in result.stderr, \
            "a secret was shown"
    assert not list(ROOT.glob("bk_*")) and not list(ROOT.glob("eyJ*")) and not (ROOT / "x.sqlite").exists(), \
        "a file was made under a key's name"
    # A server's message repeating a request field holding one (GetAccount
    # of a "key" account: "account … does not exist"), and a key pasted as a
    # key's name (stored and listed in the clear otherwise): not shown.
    for method, request in (("billing.v1.Accounts/GetAccount", {"account_id": good}),
                            ("billing.v1.Admin/CreateApiKey", {"name": good, "scopes": ["metering:read"]})):
        result = call(served, method, request)
        assert result.returncode == 2 and "not shown" in result.stderr, shown(result)
        assert good.split("_")[-1] not in result.stderr + result.stdout, "a secret was shown"
    # A file name with "eyJ" inside a word is no token: it is named.
    result = cli("serve", "--catalog", "config/keyJobs.2026.json", "--listen", "127.0.0.1:0")
    assert result.returncode == 64 and "config/keyJobs.2026.json" in result.stderr, shown(result)
    # Arguments that only look a little like one are shown, as any other.
    for args, shown_text in ((["call", "--target", served.target, "billing.v1.Metering/Quote", '{"account_id":"acme_bk_1"}'],
                              "acme_bk_1"),
                             (["call", "--target", served.target, "billing.v1.Admin/ListApiKeyJson"], "ListApiKeyJson")):
        result = cli(*args, key="")
        assert result.returncode == 64 and shown_text in result.stderr, shown(result)


def test_key_flag_and_user_token(pb, call_world):
    """--key overrides BILLING_KEY; a user token (the demo Owner's JWT) reads its own account."""
    served, _, _ = call_world
    owner = served.owner_token()
    request = {"account_id": "demo", "group_by": ["USAGE_GROUP_BY_DAY"]}
    result = call(served, "billing.v1.Metering/GetUsage", request, key="garbage", extra=("--key", owner))
    assert result.returncode == 0, shown(result)
    response, error = grpc_call(served.authorized_channel(owner), "billing.v1.Metering/GetUsage", request)
    assert error is None, error
    assert json_format.Parse(result.stdout, pb.metering_pb2.GetUsageResponse()) == response
    # ...and the metering hot path is for service keys only.
    result = call(served, "billing.v1.Metering/Quote", CASES["billing.v1.Metering/Quote"].request, key=owner)
    assert result.returncode == 2 and "PERMISSION_DENIED" in result.stderr, shown(result)


def test_request_from_standard_input(pb, call_world):
    served, channel, _ = call_world
    method = "billing.v1.Metering/Quote"
    request = CASES[method].request
    result = cli("call", "--target", served.target, method, "-d", "-", key=served.service_key(),
                 stdin=json.dumps(request, indent=2) + "\n")
    assert result.returncode == 0, shown(result)
    response, error = grpc_call(channel, method, request)
    assert error is None, error
    assert json_format.Parse(result.stdout, pb.metering_pb2.QuoteResponse()) == response
    # lowerCamelCase names are the JSON mapping too.
    camel = {"accountId": "cli-acct", "workspaceId": "w1", "agentId": "agent-cli", "runId": "cli-run-q",
             "lineItems": [{"toolCall": {"integration": "slack", "calls": "2"}}]}
    result = cli("call", "--target", served.target, method, "--data", "-", key=served.service_key(),
                 stdin=json.dumps(camel))
    assert result.returncode == 0, shown(result)
    assert json.loads(result.stdout)["would_accept"] is True, shown(result)


@pytest.mark.parametrize("data", [
    "{not json", '{"account_id": "cli-acct"', '{"no_such_field": 1}', '{"line_items": [{"llm": {"nope": 1}}]}',
    '{"account_id": "x", "line_items": [{"llm": {"account_id": 1}}]}',
    '{"account_id": 7}',
    '{"line_items": [{"llm": {"input_tokens": "many"}}]}', "[]", ""])
def test_bad_json_is_refused_clearly(call_world, data):
    served, _, _ = call_world
    for how in ("arg", "stdin"):
        if how == "arg":
            result = call(served, "billing.v1.Metering/Quote", data)
        else:
            result = cli("call", "--target", served.target, "billing.v1.Metering/Quote", "-d", "-",
                         key=served.service_key(), stdin=data)
        if data == "" and result.returncode == 0:
            continue  # an empty document may be taken as the empty message
        assert result.returncode != 0, shown(result)
        assert result.returncode != 2 or "ERROR:" not in result.stderr, f"was sent to the server:\n{shown(result)}"
        assert result.stdout == "", shown(result)
        assert "not valid JSON" in result.stderr and "billing.v1.QuoteRequest" in result.stderr, shown(result)
        assert "Fatal error" not in result.stderr and result.returncode < 128, shown(result)
        # In words, with this command's usage (not SwiftProtobuf's case names, not `billing <subcommand>`).
        assert not re.search(r"malformed[A-Z]|unknownField|schemaMismatch|: truncated|conflictingOneOf|numberRange", result.stderr), shown(result)
        assert result.returncode == 64, shown(result)
        if how == "arg":  # (read from standard input, it is found in `run`: no usage, as for a server's refusal)
            assert "Usage: billing call " in result.stderr, shown(result)
    if data == '{"no_such_field": 1}':
        assert 'billing.v1.QuoteRequest has no field "no_such_field"' in result.stderr, shown(result)
    # Well-formed JSON of the wrong shape is not called malformed (session 28), malformed JSON is.
    if data in ('{"account_id": 7}', "[]"):
        assert "a value does not have its field's type" in result.stderr, shown(result)
    if data in ("{not json", '{"account_id": "cli-acct"'):
        assert "not well-formed JSON" in result.stderr, shown(result)
    if "nope" in data or '"account_id": 1' in data:  # (session 27: it was blamed on QuoteRequest itself)
        field = "nope" if "nope" in data else "account_id"
        assert f'a message inside billing.v1.QuoteRequest has no field "{field}"' in result.stderr, shown(result)


def test_help_with_json_from_standard_input_does_not_wait_for_it():
    """`-d - --help` shows help at once: standard input is read when the
    call runs, not while the arguments are checked."""
    proc = subprocess.Popen([str(billing_binary()), "call", "billing.v1.Metering/Quote", "-d", "-", "--help"],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Standard input stays open (as a terminal's would): help must not wait for it.
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("`billing call -d - --help` waited for standard input")
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        proc.kill()
        proc.stdin.close()
    assert code == 0 and "USAGE: billing call" in out, out + err


@pytest.mark.parametrize("args, message", [
    (["serve", "--catalog", "/nonexistent/catalog.json"], "cannot read the price catalog /nonexistent/catalog.json"),
    (["serve", "--plans", "/nonexistent/plans.json"], "cannot read the plans file /nonexistent/plans.json"),
    (["keys", "list", "--db", "/nonexistent/db.sqlite"], "no database at /nonexistent/db.sqlite"),
    (["load", "--target", "127.0.0.1:1"], "give --key or set BILLING_KEY"),
    (["load", "--key", "k", "--rate", "-1"], "must not be negative"),
    (["audit", "--limit", "-1"], "--limit must be 1...100000"),
])
def test_a_bad_file_or_value_is_reported_with_the_commands_usage(tmp_path, args, message):
    """Found while the command runs or parses, each is reported with that
    command's own usage and exit code 64 (the top-level `billing
    <subcommand>` usage was shown for those found in `run`), and a negative
    number is read as a number, not as a missing value."""
    if args[0] == "audit":
        (tmp_path / "db.sqlite").write_bytes(b"")
        args = [*args, "--db", str(tmp_path / "db.sqlite")]
    result = cli(*args, key=None, timeout=20)
    assert result.returncode == 64, shown(result)
    assert message in result.stderr, shown(result)
    assert f"Usage: billing {args[0]}" in result.stderr, shown(result)


@pytest.mark.parametrize("method", ["billing.v1.Metering/Nope", "Nope/Nope", "billing.v1.Metering",
                                    "grpc.health.v1.Health/Watch"])
def test_unknown_method_is_refused_clearly(call_world, method):
    served, _, _ = call_world
    result = call(served, method, {})
    assert result.returncode not in (0, 2), shown(result)
    assert result.stdout == "", shown(result)
    assert f"unknown method {method}" in result.stderr and "--list" in result.stderr, shown(result)


def test_no_method_at_all(call_world):
    served, _, _ = call_world
    result = cli("call", "--target", served.target, key=served.service_key())
    assert result.returncode not in (0, 2) and "give a METHOD" in result.stderr, shown(result)


# --------------------------------------------------------------------------
# billing load

LOAD_E2E = ["--duration", 3, "--connections", 2, "--streams", 8, "--accounts", 5,
            "--mix", "debit:3,batch:1", "--batch-size", 10, "--json"]


def load(served, *args, key=None, timeout=CLI_TIMEOUT_S) -> tuple[dict, subprocess.CompletedProcess]:
    """`billing load --target SERVER ARGS --json`: (summary, process)."""
    args = list(args) + ([] if "--json" in args else ["--json"])
    started = time.monotonic()
    result = cli("load", "--target", served.target, *args, key=served.service_key() if key is None else key,
                 timeout=timeout)
    result.wall_seconds = time.monotonic() - started
    assert result.returncode == 0, shown(result)
    try:
        summary = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"standard output is not one JSON document:\n{shown(result)}")
    check_summary(summary)
    return summary, result


def check_summary(summary: dict):
    for field in ("calls", "ok", "elapsed_seconds", "calls_per_second", "debits_acknowledged", "latency_ms",
                  "outcomes", "connection_failures", "run_id"):
        assert field in summary, f"no {field} in {summary}"
    assert summary["calls"] == sum(summary["outcomes"].values()), summary
    assert summary["ok"] == summary["outcomes"].get("OK", 0), summary
    assert summary["connection_failures"] == [], summary
    latency = summary["latency_ms"]
    order = [latency[p] for p in ("p50", "p90", "p99", "p99.9", "max")]
    assert order == sorted(order) and order[0] > 0, latency
    if summary["elapsed_seconds"] > 0:
        assert summary["calls_per_second"] == pytest.approx(summary["calls"] / summary["elapsed_seconds"], rel=1e-6)


def verify_json(db_path) -> dict:
    result = cli("verify", "--db", db_path, "--json")
    assert result.returncode == 0, shown(result)
    report = json.loads(result.stdout)
    assert report["clean"] is True and report["problems"] == [], report
    return report


@pytest.fixture(scope="module")
def load_server(module_server):
    s = module_server()
    remember_secret(s.service_key())
    return s


def test_load_end_to_end_ledger_holds_exactly_the_acknowledged_debits(server):
    served = server()
    remember_secret(served.service_key())
    summary, result = load(served, *LOAD_E2E)
    assert summary["outcomes"] == {"OK": summary["calls"]}, summary
    assert summary["calls"] > 100 and summary["debits_acknowledged"] > summary["calls"], summary
    # Clean stop at the time bound: the timed phase lasted the duration, no more.
    # Not before the duration; the upper bound wide, for a loaded 2-core machine.
    assert 3.0 <= summary["elapsed_seconds"] <= 3.0 + 5, summary
    assert result.wall_seconds <= 3 + 5, f"load took {result.wall_seconds:.1f} s in all"
    assert "progress:" in result.stderr, shown(result)
    # The demo account has no debits (its credits are a grant); the load made all of them.
    report = verify_json(served.db_path)
    assert report["accepted_debits"] == summary["debits_acknowledged"], (report, summary)
    assert report["refused_debits"] == 0, report
    assert report["accounts"] == 1 + 5, report


def test_load_stops_at_exactly_the_requested_calls(load_server):
    summary, _ = load(load_server, "--requests", 200, "--connections", 4, "--streams", 8, "--accounts", 3,
                      "--mix", "debit:1,quote:1", "--duration", 30)
    assert summary["calls"] == 200, summary
    assert summary["outcomes"] == {"OK": 200}, summary
    assert summary["elapsed_seconds"] < 30, summary


@pytest.mark.parametrize("requests, connections", [(7, 2), (3, 4)])
def test_load_request_bound_is_exact_when_not_a_multiple_of_connections(load_server, requests, connections):
    """--help: "Stop after this many calls in all"."""
    summary, _ = load(load_server, "--requests", requests, "--connections", connections, "--accounts", 1,
                      "--mix", "quote:1")
    assert summary["calls"] == requests, summary


def test_load_rate_control(load_server):
    summary, _ = load(load_server, "--rate", 200, "--duration", 4, "--mix", "quote:1", "--accounts", 5)
    assert summary["outcomes"] == {"OK": summary["calls"]}, summary
    # The pacer never sends ahead of the rate (a call may start at each
    # connection's first slot); below it only a loaded machine, so the lower
    # bound is loose. The schedule itself: PacerTests, on a fake clock.
    elapsed = summary["elapsed_seconds"]
    assert summary["calls"] <= 200 * elapsed + 8, f"asked 200 calls/s, got {summary['calls']} in {elapsed:.2f} s ({summary})"
    assert summary["calls"] >= 100 * elapsed, f"asked 200 calls/s, got {summary['calls']} in {elapsed:.2f} s ({summary})"
    assert 3.9 <= elapsed <= 4 + 5, summary


def test_load_back_to_back_runs_use_fresh_idempotency_keys(server):
    served = server()
    remember_secret(served.service_key())
    args = ["--requests", 400, "--connections", 4, "--streams", 8, "--accounts", 2, "--mix", "debit:3,batch:1",
            "--batch-size", 5]
    first, _ = load(served, *args)
    second, _ = load(served, *args)
    assert first["run_id"] != second["run_id"], (first, second)
    for summary in (first, second):
        assert summary["outcomes"] == {"OK": 400}, summary
        assert not any("IDEMPOTENCY_KEY_REUSED" in k for k in summary["outcomes"]), summary
    report = verify_json(served.db_path)
    assert report["accepted_debits"] == first["debits_acknowledged"] + second["debits_acknowledged"], \
        (report, first, second)


@pytest.mark.parametrize("mix", ["debit:1,cost:1", "cost:1"])
def test_load_execution_cost_queries_runs_of_the_account_it_names(load_server, mix):
    """`--mix cost` reads GetExecutionCost for the newest run of that account
    whose debit was answered OK (never one still in flight), else for the run
    provisioning debited for it (a mix of cost queries alone once measured
    only RUN_NOT_FOUND refusals): every call finds its run, with many calls
    in flight."""
    summary, _ = load(load_server, "--mix", mix, "--requests", 400, "--connections", 2,
                      "--streams", 8, "--accounts", 3)
    assert summary["outcomes"] == {"OK": 400}, summary


def test_load_without_admin_scope_fails_provisioning_clearly(pb, load_server):
    admin = pb.admin_pb2_grpc.AdminStub(load_server.authorized_channel())
    made = admin.CreateApiKey(pb.admin_pb2.CreateApiKeyRequest(name="load-no-admin",
                                                               scopes=["metering:read", "metering:write"]),
                              timeout=RPC_TIMEOUT_S)
    remember_secret(made.secret)
    result = cli("load", "--target", load_server.target, "--requests", 4, "--accounts", 1, "--json",
                 key=made.secret)
    assert result.returncode != 0, shown(result)
    assert "provisioning failed" in result.stderr and "PERMISSION_DENIED" in result.stderr, shown(result)


@pytest.mark.parametrize("args, message", [
    (["--connections", 0], "--connections"),
    (["--streams", 0], "--streams"),
    (["--duration", 0], "--duration"),
    (["--requests", -1], "--requests"),
    (["--rate", -5], "--rate"),
    (["--batch-size", 0], "--batch-size"),
    (["--accounts", 0], "--accounts"),
    (["--mix", "nope:1"], "--mix"),
    (["--mix", "debit:x"], "--mix"),
    (["--mix", "debit:0"], "--mix"),
    (["--mix", "debit:1:2"], "--mix"),
    (["--mix", ""], "--mix"),
    (["--mix", ":"], "--mix"),
    (["--mix", "debit:1,:"], "--mix"),
    (["--target", "nowhere"], "--target"),
    (["--credits-micros", 0], "--credits-micros"),
    (["--credits-micros=-5"], "--credits-micros"),
    (["--rate", 10_000_001], "--rate"),
    ("no key", "BILLING_KEY"),
])
def test_load_bad_arguments_fail_clearly(load_server, args, message):
    if args == "no key":
        result = cli("load", "--target", load_server.target, "--requests", 4, "--accounts", 1, key=None)
    else:
        result = cli("load", "--target", load_server.target, "--requests", 4, "--accounts", 1, *args,
                     key=load_server.service_key(), timeout=20)
    assert result.returncode != 0, shown(result)
    assert 0 < result.returncode < 128, f"crashed instead of refusing:\n{shown(result)[:1500]}"
    assert "Error:" in result.stderr and message in result.stderr, shown(result)[:1500]
    assert result.stdout == "", shown(result)


def test_call_and_load_take_host_names_and_unresolvable_ones_fail_clearly(call_world):
    """`--target localhost:PORT` (the name resolves; each address is tried)
    once failed as "not a numeric IPv4 address"."""
    served, _, _ = call_world
    by_name = cli("call", "--target", f"localhost:{served.port}", "grpc.health.v1.Health/Check", "-d", "{}",
                  key=served.service_key())
    assert by_name.returncode == 0 and "SERVING" in by_name.stdout, shown(by_name)
    # A label over 63 bytes: refused by the resolver library itself, so no
    # query leaves the machine (a name merely unknown asks its DNS server).
    bad_name = "x" * 64 + ".invalid"
    unknown = cli("call", "--target", f"{bad_name}:50051", "grpc.health.v1.Health/Check", "-d", "{}",
                  key=None, timeout=30)
    assert 0 < unknown.returncode < 128 and f"cannot resolve {bad_name}" in unknown.stderr, shown(unknown)


def test_load_unreachable_target_fails_clearly():
    result = cli("load", "--target", "127.0.0.1:1", "--requests", 4, "--accounts", 1, key="bk_x_y", timeout=20)
    assert 0 < result.returncode < 128, shown(result)
    assert "127.0.0.1:1" in result.stderr and "refused" in result.stderr.lower(), shown(result)


def test_load_stops_at_the_time_bound_even_when_the_server_stalls(server):
    """--duration bounds the run: calls still in flight at the bound (here on
    a server stopped with SIGSTOP) must not keep the tool running."""
    served = server()
    remember_secret(served.service_key())
    env = dict(os.environ, BILLING_KEY=served.service_key())
    load_proc = subprocess.Popen(
        [str(billing_binary()), "load", "--target", served.target, "--duration", "2", "--connections", "2",
         "--streams", "4", "--accounts", "2", "--mix", "quote:1", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    try:
        # Stall the server once the timed phase runs (provisioning done: progress lines appear).
        first = load_proc.stderr.readline()
        assert first.startswith("progress:"), first
        served.proc.send_signal(signal.SIGSTOP)
        try:
            stdout, _ = load_proc.communicate(timeout=max(0.1, 2 + 3 - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            pytest.fail(f"billing load --duration 2 still running {time.monotonic() - started:.1f} s after it "
                        "started (the server stalled with calls in flight)")
    finally:
        served.proc.send_signal(signal.SIGCONT)
        if load_proc.poll() is None:
            load_proc.kill()
            load_proc.communicate(timeout=10)
    summary = json.loads(stdout)
    assert summary["calls"] == sum(summary["outcomes"].values()), summary
    assert summary["elapsed_seconds"] <= 2 + 3, summary


def test_call_and_load_over_tls(pb, server, tls_files):
    served = server(tls=True)
    remember_secret(served.service_key())
    # The demo's ready-to-paste call says it needs the CA (session 28: pasted, it failed "server closed the connection").
    assert f"--target {served.target} --tls-ca CA.pem \\\n" in served.stdout_text(), served.stdout_text()
    assert "(TLS: CA.pem is the CA that signed --tls-cert" in served.stdout_text(), served.stdout_text()
    method = "billing.v1.Metering/Quote"
    request = {"account_id": "demo", "workspace_id": "w1", "agent_id": "a1", "line_items": ITEMS}
    result = call(served, method, request, extra=("--tls-ca", tls_files.server_cert))
    assert result.returncode == 0, shown(result)
    response, error = grpc_call(served.authorized_channel(), method, request)
    assert error is None, error
    assert json_format.Parse(result.stdout, pb.metering_pb2.QuoteResponse()) == response
    # A CA that did not sign the server's certificate: refused before any call.
    result = call(served, method, request, extra=("--tls-ca", tls_files.client_ca))
    assert result.returncode not in (0, 2), shown(result)
    assert "certificate verify failed" in result.stderr, shown(result)

    summary, _ = load(served, "--tls-ca", tls_files.server_cert, "--requests", 100, "--connections", 2,
                      "--accounts", 2)
    assert summary["outcomes"] == {"OK": 100} and summary["debits_acknowledged"] == 100, summary
    assert verify_json(served.db_path)["accepted_debits"] == 100


def test_call_and_load_with_a_client_certificate(server, tls_files):
    """A server asking for client certificates (--tls-client-ca): `call` and
    `load` present one with --tls-cert/--tls-key (session 28: they had no
    way to, and got "certificate required"); without one, refused."""
    served = server(tls=True, client_ca=True)
    remember_secret(served.service_key())
    assert "--tls-ca CA.pem --tls-cert CLIENT.pem --tls-key CLIENT.key \\\n" in served.stdout_text(), served.stdout_text()
    method, request = "grpc.health.v1.Health/Check", {}
    mine = ("--tls-ca", tls_files.server_cert, "--tls-cert", tls_files.client_cert, "--tls-key", tls_files.client_key)
    result = call(served, method, request, extra=mine)
    assert result.returncode == 0 and json.loads(result.stdout) == {"status": "SERVING"}, shown(result)
    result = call(served, method, request, extra=mine[:2])
    assert result.returncode == 1 and "certificate required" in result.stderr, shown(result)
    for half in (mine[:4], mine[:2] + mine[4:], mine[2:]):
        result = call(served, method, request, extra=half)
        assert result.returncode == 64, shown(result)
        assert "--tls-cert and --tls-key go together" in result.stderr or "--tls-cert needs --tls-ca" in result.stderr, \
            shown(result)
    summary, _ = load(served, *mine, "--requests", 50, "--connections", 1, "--accounts", 1)
    assert summary["outcomes"] == {"OK": 50}, summary


def test_call_deadline(call_world):
    served, _, _ = call_world
    started = time.monotonic()
    result = call(served, "billing.v1.Testing/Echo", {"payload": "", "delay_ms": 5000},
                  extra=("--timeout-millis", 300))
    assert result.returncode == 2 and "DEADLINE_EXCEEDED" in result.stderr, shown(result)
    assert time.monotonic() - started < 4, "the deadline did not bound the call"


def test_call_of_a_large_answer_is_not_timed_out_by_its_chunks(call_world):
    """A 4 MB answer, read in many chunks, within a 3 s deadline (session
    29: each read counted as 100 ms of the deadline, so it "timed out" in
    a fraction of a second, exit 1 — the call had succeeded)."""
    served, _, _ = call_world
    payload = base64.b64encode(os.urandom(3_000_000)).decode()
    request = json.dumps({"payload": payload})
    result = cli("call", "--target", served.target, "billing.v1.Testing/Echo", "-d", "-", "--timeout-millis", 3000,
                 key=served.service_key(), stdin=request)
    assert result.returncode == 0, shown(result)[-2000:]
    assert json.loads(result.stdout)["payload"] == payload


def test_load_text_summary(load_server):
    result = cli("load", "--target", load_server.target, "--requests", 40, "--connections", 2, "--accounts", 1,
                 "--mix", "debit:1", key=load_server.service_key())
    assert result.returncode == 0, shown(result)
    assert re.search(r"^run load-\S+: 40 calls in [\d.]+ s = \d+ calls/s$", result.stdout, re.M), shown(result)
    assert re.search(r"^latency ms: p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +p99\.9 [\d.]+ +max [\d.]+$",
                     result.stdout, re.M), shown(result)
    assert "debits acknowledged: 40" in result.stdout.splitlines(), shown(result)
    assert "  OK: 40" in result.stdout.splitlines(), shown(result)


def test_serve_allocates_with_jemalloc(server):
    """The executable links jemalloc and its malloc is the whole process's:
    the `listening` line names it only after checking that a plain malloc
    is counted by jemalloc (README, Architecture)."""
    served = server()
    served.terminate()
    assert served.wait_exit(timeout=10) == 0, served.log_tail()  # the log is complete once it has stopped
    line = next(l for l in served.log().splitlines() if "listening" in l)
    # The version alone, then the next field: not "(not checked ...)" nor "not jemalloc".
    assert re.search(r'allocator="jemalloc 5\.\d+\.\d+" threads=', line), line


@pytest.mark.parametrize("args,message", [
    (["--checkpoint-every", "0"], "--checkpoint-every must be 1...1000000000"),
    (["--checkpoint-every", "1000000001"], "--checkpoint-every must be 1...1000000000"),
    (["--max-queued-entries", "0"], "--max-queued-entries must be 1...16777216"),
    (["--max-queued-entries", "16777217"], "--max-queued-entries must be 1...16777216"),
    (["--threads", "0"], "--threads must be 1...256"),
    (["--idle-timeout-seconds=-1"], "--idle-timeout-seconds must be 1...604800"),
    (["--idle-timeout-seconds", "0"], "--idle-timeout-seconds must be 1...604800"),
    (["--drain-seconds", "99999999999999"], "--drain-seconds must be 0...3600"),
    (["--request-timeout-seconds", "0"], "--request-timeout-seconds must be 1...86400"),
    (["--max-call-seconds", "0"], "--max-call-seconds must be 1...86400"),
    (["--max-call-seconds", "86401"], "--max-call-seconds must be 1...86400"),
    (["--max-buffered-request-mib", "0"], "--max-buffered-request-mib must be 1...1048576"),
    (["--max-buffered-request-mib", "4"], "--max-buffered-request-mib must hold at least one largest message"),
    (["--max-buffered-request-mib", "8", "--max-message-bytes", "8388608"],
     "--max-buffered-request-mib must hold at least one largest message"),
    (["--no-demo", "--demo-credentials-file", "x.json"], "--demo-credentials-file has nothing to write with --no-demo"),
    (["--max-connections", "0"], "--max-connections must be 1...1000000"),
    (["--max-connections", "1000001"], "--max-connections must be 1...1000000"),
    # Session 26: found before anything runs, not after recovery and catch-up (or after serving).
    (["--listen", "localhost:5000"], "--listen must be host:port with a numeric host"),
    (["--metrics-listen", "localhost:9090"], "--metrics-listen must be host:port with a numeric host"),
    (["--listen", "127.0.0.1:5000", "--metrics-listen", "127.0.0.1:5000"], "would bind the port of --listen"),
    (["--listen", "127.0.0.1:5000", "--metrics-listen", "0.0.0.0:5000"], "would bind the port of --listen"),
    (["--port-file", "/nonexistent-dir/port"], "--port-file /nonexistent-dir/port: its directory /nonexistent-dir does not exist"),
    (["--demo-credentials-file", "/nonexistent-dir/c.json"], "--demo-credentials-file /nonexistent-dir/c.json: its directory"),
    # Session 28: a directory where the file goes (the demo made and printed, then a raw error).
    (["--port-file", "/tmp"], "--port-file /tmp is a directory; name a file"),
    (["--demo-credentials-file", "/tmp"], "--demo-credentials-file /tmp is a directory; name a file"),
    (["--drain-seconds", "-1"], "--drain-seconds must be 0...3600"),
    (["--threads", "-1"], "--threads must be 1...256"),
    (["--max-held-response-mib", "0"], "--max-held-response-mib must be 1...1048576"),
])
def test_serve_bad_arguments_fail_clearly(tmp_path, args, message):
    result = cli("serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "db.sqlite"), *args, key=None, timeout=20)
    assert 0 < result.returncode < 128, f"crashed or started instead of refusing:\n{shown(result)[:1500]}"
    assert "Error:" in result.stderr and message in result.stderr, shown(result)[:1500]
    assert not (tmp_path / "db.sqlite").exists(), "a refused start created the database"


def test_a_named_jwt_secret_file_that_is_missing_stops_the_start(tmp_path):
    """Only the default <db>.jwt-secret is generated; a file the operator
    names must exist (a typo once made the server refuse every user token)."""
    missing = tmp_path / "no-such-secret"
    result = cli("serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "db.sqlite"),
                 "--jwt-secret-file", str(missing), key=None, timeout=60)
    assert result.returncode == 64, f"started instead of refusing:\n{shown(result)[:1500]}"
    assert f"--jwt-secret-file {missing} cannot be read" in result.stderr, shown(result)[:1500]
    assert "Usage: billing serve" in result.stderr, shown(result)[:1500]
    assert not missing.exists()
    # Checked before the database is opened: nothing recovered, caught up or created.
    assert "ledger recovered" not in result.stderr + result.stdout, shown(result)[:1500]
    assert not (tmp_path / "db.sqlite").exists(), "a refused start created the database"
    short = tmp_path / "short-secret"
    short.write_text("too short\n")
    result = cli("serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "db.sqlite"),
                 "--jwt-secret-file", str(short), key=None, timeout=60)
    assert result.returncode == 64 and "shorter than 32 bytes" in result.stderr, shown(result)[:1500]
    assert not (tmp_path / "db.sqlite").exists(), "a refused start created the database"


@pytest.mark.parametrize("millis", ["0", "-5", "100000000"])
def test_call_refuses_a_deadline_grpc_timeout_cannot_carry(millis):
    result = cli("call", "grpc.health.v1.Health/Check", "--target", "127.0.0.1:1", f"--timeout-millis={millis}",
                 "-d", "{}", key=None, timeout=20)
    assert result.returncode == 64, shown(result)[:1500]
    assert "--timeout-millis must be 1...99999999" in result.stderr, shown(result)[:1500]


def test_verify_that_cannot_check_exits_2_not_1(tmp_path):
    """1 means differences found; a database that is not there is another thing."""
    result = cli("verify", "--db", str(tmp_path / "none.sqlite"), key=None, timeout=20)
    assert result.returncode == 2, shown(result)[:1500]
    assert "no billing database at" in result.stderr, shown(result)[:1500]
    assert not (tmp_path / "none.sqlite").exists()


def test_a_first_start_that_cannot_listen_leaves_the_demo_credentials_to_the_next(tmp_path, server):
    """The demo account and key are made once the address is bound: a first
    start on a taken port (the Quick start's 50051 in use) once made them and
    exited, and no later start showed the key."""
    taken = server()  # holds a port
    db = tmp_path / "db.sqlite"
    credentials = tmp_path / "credentials.json"
    # The gRPC port taken, or (bound later) the metrics port.
    for address in (["--listen", f"127.0.0.1:{taken.port}"],
                    ["--listen", "127.0.0.1:0", "--metrics-listen", f"127.0.0.1:{taken.port}"]):
        failed = cli("serve", *address, "--db", str(db), "--demo-credentials-file", str(credentials), key=None, timeout=60)
        assert 0 < failed.returncode < 128, shown(failed)[:1500]
        assert not credentials.exists(), shown(failed)[:1500]
        keys = cli("keys", "list", "--db", str(db), key=None, timeout=60)
        assert keys.returncode == 0 and "demo" not in keys.stdout, shown(keys)[:1500]
    # The next start (a free port) is the fresh one: it makes and writes them.
    again = server(db=db)
    assert again.credentials_path is not None and again.credentials_path.exists()
    assert json.loads(again.credentials_path.read_text())["service_key"]


def test_a_start_that_cannot_serve_journals_nothing(tmp_path, server):
    """Every address is bound and the catalog checked before the start
    journals anything: a start on a taken port (gRPC or metrics) or with
    prices changed under their version exits naming the cause, and the
    journal is as it was — session 28: due transitions were caught up and
    the changed plan terms journaled (here: --grace-days 9) by a server that
    never listened. The next start that can serve journals them."""
    import sqlite3
    taken = server()  # holds a port
    first = server()
    first.terminate()
    assert first.wait_exit(10) == 0
    db = first.db_path

    def journal():
        with sqlite3.connect(db) as connection:
            return connection.execute("SELECT count(*), max(seq) FROM journal").fetchone()

    before = journal()
    catalog = json.loads((ROOT / "config" / "catalog.json").read_text())
    catalog["tool_calls"]["default_micros_per_call"] += 1  # other prices, the same version
    changed = tmp_path / "changed-catalog.json"
    changed.write_text(json.dumps(catalog))
    for args, cause in ((["--listen", f"127.0.0.1:{taken.port}"], f"--listen 127.0.0.1:{taken.port}: "),
                        (["--listen", "127.0.0.1:0", "--metrics-listen", f"127.0.0.1:{taken.port}"],
                         f"--metrics-listen 127.0.0.1:{taken.port}: "),
                        (["--listen", "127.0.0.1:0", "--catalog", str(changed)], "was served before with other prices")):
        failed = cli("serve", *args, "--db", str(db), "--grace-days", "9", key=None, timeout=60)
        assert 0 < failed.returncode < 128, shown(failed)[:1500]
        assert cause in failed.stderr, shown(failed)[:1500]
        assert journal() == before, args
    again = server(db=db, args=["--grace-days", "9"])
    assert "plan terms or grace changed" in again.log(), again.log_tail()
    assert journal()[1] > before[1]


def test_a_start_that_fails_after_recording_the_catalog_forgets_it(tmp_path, server):
    """The catalog's version is recorded once the addresses are bound and
    forgotten if the start fails before serving, whatever fails: here a JWT
    secret file too short (session 28's diff review: it stayed recorded,
    and the next start, its prices corrected, was refused)."""
    db = tmp_path / "db.sqlite"
    Path(str(db) + ".jwt-secret").write_bytes(b"short\n")
    failed = cli("serve", "--listen", "127.0.0.1:0", "--db", str(db), key=None, timeout=60)
    assert 0 < failed.returncode < 128 and "32 bytes" in failed.stderr, shown(failed)[:1500]
    Path(str(db) + ".jwt-secret").unlink()
    catalog = json.loads((ROOT / "config" / "catalog.json").read_text())
    catalog["tool_calls"]["default_micros_per_call"] += 1  # other prices, the same version
    changed = tmp_path / "changed-catalog.json"
    changed.write_text(json.dumps(catalog))
    served = server(db=db, args=["--catalog", str(changed)])
    served.assert_serving()


def test_a_revoked_demo_key_is_not_made_again_at_the_next_start(pb, tmp_path, server):
    """A database where a key was ever made is not fresh: the demo key
    revoked, the next start makes no new one (a first start stopped before
    the demo's key — its account made — is made whole: DemoProvisioningTests)."""
    first = server()
    admin = pb.admin_pb2_grpc.AdminStub(first.authorized_channel())
    key_id = first.service_key().split("_")[1]
    admin.RevokeApiKey(pb.admin_pb2.RevokeApiKeyRequest(key_id=key_id), timeout=RPC_TIMEOUT_S)
    first.terminate()
    assert first.wait_exit(10) == 0
    again = server(db=first.db_path)
    assert again.credentials_path is None or not again.credentials_path.exists(), again.log_tail()
    assert "Service key" not in again.stdout_text(), again.log_tail()


def test_another_programs_database_is_left_exactly_as_it_was(tmp_path):
    """verify, audit, keys and serve on an SQLite file of something else:
    refused with a message saying so, the file not switched to WAL, no
    billing table added (the advice to start `serve` on it once would have
    migrated it)."""
    import sqlite3
    for layout, statements in (("plain", ["CREATE TABLE notes (body TEXT)"]),
                               # Other migration tools keep a schema_migrations table of their own.
                               ("golang-migrate", ["CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
                                                   "INSERT INTO schema_migrations VALUES (3, 0)", "CREATE TABLE notes (body TEXT)"]),
                               ("rails", ["CREATE TABLE schema_migrations (version varchar NOT NULL PRIMARY KEY)",
                                          "INSERT INTO schema_migrations VALUES ('20240101120000')", "CREATE TABLE notes (body TEXT)"])):
        check_left_alone(tmp_path / f"{layout}.sqlite", statements)


def check_left_alone(db, statements):
    import sqlite3
    with sqlite3.connect(db) as connection:
        for statement in statements:
            connection.execute(statement)
    tables = sorted(row[0] for row in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    for args in (["verify", "--db", str(db)], ["audit", "--db", str(db)], ["keys", "list", "--db", str(db)],
                 ["serve", "--db", str(db), "--listen", "127.0.0.1:0", "--no-demo"]):
        result = cli(*args, key=None, timeout=60)
        assert 0 < result.returncode < 128, f"{args}: {shown(result)[:1500]}"
        assert "database of something else" in result.stderr, f"{args}: {shown(result)[:1500]}"
        assert "start this build's" not in result.stderr
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert sorted(row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")) == tables


def test_under_nohup_a_hang_up_does_not_stop_the_server(tmp_path):
    """SIGHUP drains the server like SIGTERM (a closed terminal), unless it
    was started with SIGHUP ignored (`nohup`): then a logout leaves it
    running (a blocked signal is queued for sigwait even when ignored)."""
    port_file = tmp_path / "port"
    # Started as nohup starts it: SIGHUP ignored, by a shell that then
    # execs it (no Python between fork and exec: see conftest's `start`).
    process = subprocess.Popen(["sh", "-c", 'trap "" HUP; exec "$@"', "sh",
                                str(billing_binary()), "serve", "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                                "--db", str(tmp_path / "db.sqlite"), "--no-demo"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
            time.sleep(0.05)
        process.send_signal(signal.SIGHUP)
        # Still serving afterwards: a call answered, then the process still there.
        result = cli("call", "grpc.health.v1.Health/Check", "--target", f"127.0.0.1:{port_file.read_text().strip()}")
        assert result.returncode == 0 and "SERVING" in result.stdout, shown(result)
        assert process.poll() is None
        process.terminate()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_a_first_key_for_a_no_demo_server_is_made_before_its_first_start(pb, tmp_path, server):
    """`serve --no-demo` makes no key: its first start says how to make one,
    and `billing keys create` makes the database if it is missing (session
    28: "no database" before the first start, "in use" during it)."""
    db = tmp_path / "prod" / "billing.sqlite"
    bare = server(db=db, args=["--no-demo"])
    assert "no active API key" in bare.log() and f"billing keys create --db {db}" in bare.log(), bare.log_tail()
    bare.terminate()
    assert bare.wait_exit(10) == 0
    # Not at the default path, from wherever it runs: only where --db says.
    elsewhere = subprocess.run([str(billing_binary()), "keys", "create", "--name", "ops", "--scope", "accounts:admin"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert elsewhere.returncode == 64 and "no database at var/billing.sqlite" in elsewhere.stderr, shown(elsewhere)
    # With this command's usage (session 31: the top-level one).
    assert "Usage: billing keys create" in elsewhere.stderr, shown(elsewhere)
    assert not (tmp_path / "var").exists()
    db2 = tmp_path / "prod2" / "billing.sqlite"
    made = cli("keys", "create", "--db", str(db2), "--name", "ops", "--scope", "accounts:admin", key=None, timeout=60)
    assert made.returncode == 0 and f"created a new, empty ledger at {db2}" in made.stderr, shown(made)
    secret = re.search(r"secret \(shown once\): (\S+)", made.stdout).group(1)
    remember_secret(secret)
    served = server(db=db2, args=["--no-demo"])
    assert "no active API key" not in served.log(), served.log_tail()
    admin = pb.admin_pb2_grpc.AdminStub(served.authorized_channel(secret))
    keys = admin.ListApiKeys(pb.admin_pb2.ListApiKeysRequest(), timeout=RPC_TIMEOUT_S).keys
    assert [k.name for k in keys] == ["ops"], keys


def test_a_database_moved_away_from_under_a_symlink_is_not_made_anew(tmp_path):
    """--db through a symlink whose target is missing: made 0600 at the
    target when it is new; refused when the target's lock says a ledger was
    opened there (session 28's diff review: the link's own lock was looked
    at, and a new, empty ledger made 0644 where the moved one had been)."""
    import stat
    (tmp_path / "data").mkdir()
    (tmp_path / "link").mkdir()
    real, link = tmp_path / "data" / "real.sqlite", tmp_path / "link" / "b.sqlite"
    link.symlink_to("../data/real.sqlite")
    made = cli("keys", "create", "--db", str(link), "--name", "a", "--scope", "metering:read", key=None, timeout=60)
    assert made.returncode == 0, shown(made)
    remember_secret(re.search(r"secret \(shown once\): (\S+)", made.stdout).group(1))
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    real.rename(tmp_path / "data" / "moved.sqlite")
    again = cli("keys", "create", "--db", str(link), "--name", "b", "--scope", "metering:read", key=None, timeout=60)
    assert 0 < again.returncode < 128 and "is missing" in again.stderr, shown(again)
    assert not real.exists() and not Path(str(link) + ".lock").exists()
    # A bare relative name (no directory part) linking to a file not made
    # yet: the lock beside the target, not at the root of the filesystem.
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "b.sqlite").symlink_to("real.sqlite")
    made = subprocess.run([str(billing_binary()), "keys", "create", "--db", "b.sqlite", "--name", "a", "--scope",
                           "metering:read"], cwd=tmp_path / "here", capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, shown(made)
    remember_secret(re.search(r"secret \(shown once\): (\S+)", made.stdout).group(1))
    assert (tmp_path / "here" / "real.sqlite.lock").exists() and not Path("/real.sqlite.lock").exists()
    # `--` ends the options: what follows is the key id.
    key_id = re.search(r"key_id: (\S+)", made.stdout).group(1)
    revoked = cli("keys", "revoke", "--db", str(tmp_path / "here" / "b.sqlite"), "--", key_id, key=None, timeout=60)
    assert revoked.returncode == 0 and f"revoked {key_id}" in revoked.stdout, shown(revoked)


@pytest.mark.parametrize("db, message", [("", "--db is empty"), ("/tmp", "--db /tmp is a directory"),
                                         ("file:x.sqlite", "looks like an SQLite URI")])
def test_a_db_path_that_cannot_be_a_database_is_refused_clearly(db, message):
    for args in (["serve", "--listen", "127.0.0.1:0"], ["keys", "create", "--name", "a", "--scope", "metering:read"]):
        result = cli(*args, "--db", db, key=None, timeout=60)
        assert 0 < result.returncode < 128 and message in result.stderr, shown(result)


def test_a_start_refused_on_another_programs_file_leaves_no_lock_that_refuses_the_next(tmp_path, server):
    """The lock file counts as "a ledger was opened here" only once one was
    (session 28: a start refused on a file of something else left a lock
    file, and a start on a new database there was refused as "moved or
    deleted")."""
    import sqlite3
    db = tmp_path / "x.sqlite"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    refused = cli("serve", "--listen", "127.0.0.1:0", "--db", str(db), "--no-demo", key=None, timeout=60)
    assert "database of something else" in refused.stderr, shown(refused)
    db.unlink()
    served = server(db=db)
    assert served.service_key()


def test_a_checkpoint_past_the_journals_end_is_refused_at_start(pb, tmp_path, server):
    """A checkpoint is written only once its seq is durable: one past the
    journal's last entry means entries were lost (a damaged or partly
    restored database). The start is refused saying so (session 28, a
    review: it was loaded, and every commit then failed, reloading forever)."""
    import sqlite3
    first = server()
    admin = pb.admin_pb2_grpc.AdminStub(first.authorized_channel())
    for n in range(5):
        admin.GrantCredits(pb.admin_pb2.GrantCreditsRequest(account_id="demo", amount_micros=1_000_000, reason="t",
                                                            idempotency_key=f"g{n}"), timeout=RPC_TIMEOUT_S)
    first.terminate()
    assert first.wait_exit(10) == 0  # its final checkpoint is at the last seq
    with sqlite3.connect(first.db_path) as connection:
        last = connection.execute("SELECT max(seq) FROM journal").fetchone()[0]
        connection.execute("DELETE FROM journal WHERE seq > ?", (last - 2,))
    again = cli("serve", "--listen", "127.0.0.1:0", "--db", str(first.db_path), key=None, timeout=60)
    assert 0 < again.returncode < 128, shown(again)[:1500]
    assert f"past the journal's last entry ({last - 2})" in again.stderr, shown(again)[:1500]
    assert again.stderr.count(f"seq {last}") == 1, shown(again)[:1500]  # (said once)
    # `billing verify` still compares it and lists what differs (exit 1, not 2: "cannot check").
    checked = cli("verify", "--db", str(first.db_path), key=None, timeout=60)
    assert checked.returncode == 1 and "checkpoint + replay" in checked.stdout, shown(checked)[:1500]


def test_a_database_moved_under_the_running_server_stops_it_and_the_next_start_refuses(tmp_path, server):
    """SQLite in WAL mode writes on to a file deleted or renamed under it:
    the server notices within seconds and stops (exit 74) instead of
    acknowledging debits into a file no one will open; the next start on
    the path, its database gone but its lock file (made at the first start)
    still there, refuses instead of serving an empty ledger."""
    s = server()
    db = s.db_path
    moved = tmp_path / "moved.sqlite"
    db.rename(moved)
    s.stopped_on_purpose = True
    assert s.wait_exit(timeout=15) == 74, s.log_tail()
    assert "deleted, renamed or replaced" in s.log_tail()
    again = cli("serve", "--listen", "127.0.0.1:0", "--db", str(db), key=None, timeout=60)
    assert 0 < again.returncode < 128, f"started instead of refusing:\n{shown(again)[:1500]}"
    assert "is missing" in again.stderr and ".lock" in again.stderr, shown(again)[:1500]
    assert not db.exists()
    # Moved back (its -wal never moved), it serves again, as it was.
    moved.rename(db)
    assert Path(str(db) + "-wal").exists()
    restarted = server(db=db)
    restarted.assert_serving()


def test_reading_commands_change_nothing_and_read_a_read_only_copy(pb, tmp_path, server):
    """verify, audit and keys list open the database read-only (session 26:
    they set WAL mode and, closing, folded a crashed server's log into the
    file; a read-only copy could not be read at all). After a SIGKILL the
    file and its log are byte for byte as the server left them; a copy in
    a directory the reader cannot write is read (as immutable) — refused,
    saying why, when a log with commits sits beside it."""
    import hashlib
    import shutil
    import signal
    s = server()
    c, m = pb.common_pb2, pb.metering_pb2
    metering = pb.metering_pb2_grpc.MeteringStub(s.authorized_channel())
    for n in range(20):
        metering.Debit(m.DebitRequest(account_id="demo", workspace_id="w", agent_id="a", run_id=f"r{n}", idempotency_key=f"k{n}",
                                      line_items=[c.LineItem(tool_call=c.ToolCallUsage(integration="slack", calls=1))]),
                       timeout=RPC_TIMEOUT_S)
    s.terminate(signal.SIGKILL)
    s.wait_exit(10)
    db = s.db_path
    log = Path(str(db) + "-wal")
    assert log.exists() and log.stat().st_size > 0
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    before = (digest(db), digest(log))
    report = verify_json(db)
    assert report["clean"] and report["accepted_debits"] == 20, report
    for args in (["audit", "--db", db, "--limit", "5"], ["keys", "list", "--db", db]):
        result = cli(*args)
        assert result.returncode == 0, shown(result)
    assert (digest(db), digest(log)) == before, "a reading command changed the database or its log"
    crashed_log = log.read_bytes()
    # A clean stop folds the log in; the file alone, copied where the reader cannot write.
    again = server(db=db)
    again.terminate()
    assert again.wait_exit(10) == 0
    copy_dir = Path(tempfile.mkdtemp(prefix="billing-ro-"))
    try:
        shutil.copy(db, copy_dir / "db.sqlite")
        shutil.copy(billing_binary(), copy_dir / "billing")
        os.chmod(copy_dir / "db.sqlite", 0o444)
        os.chmod(copy_dir, 0o555)
        # As root every directory is writable: read as nobody then.
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        run = lambda *args: subprocess.run(prefix + [str(copy_dir / "billing"), *args], cwd="/", capture_output=True,
                                           text=True, timeout=CLI_TIMEOUT_S)
        result = run("verify", "--db", str(copy_dir / "db.sqlite"))
        assert result.returncode == 0 and "clean" in result.stdout, result.stdout + result.stderr
        assert sorted(p.name for p in copy_dir.iterdir()) == ["billing", "db.sqlite"]
        os.chmod(copy_dir, 0o755)
        (copy_dir / "db.sqlite-wal").write_bytes(crashed_log)  # a log with commits beside it (the crashed one's)
        os.chmod(copy_dir, 0o555)
        result = run("verify", "--db", str(copy_dir / "db.sqlite"))
        assert result.returncode != 0 and "a write-ahead log is beside it" in result.stderr, result.stdout + result.stderr
    finally:
        os.chmod(copy_dir, 0o755)
        shutil.rmtree(copy_dir)


def test_a_stop_without_new_entries_does_not_store_the_key_filter_again(pb, tmp_path, server):
    """The key filter (16 MiB by default, up to 4 GiB) is stored with the
    final checkpoint; a server started and stopped with nothing new since
    the stored copy wrote it again at every stop. Now only when it covers
    more; the next start still loads the stored copy."""
    first = server()
    first.terminate()
    assert first.wait_exit(10) == 0
    assert "key filter stored" in first.log(), first.log_tail()
    second = server(db=first.db_path)
    second.terminate()
    assert second.wait_exit(10) == 0
    assert "key filter stored" not in second.log(), second.log_tail()
    third = server(db=first.db_path)
    assert 'key_filter="stored at seq' in third.log(), third.log_tail()
    c, m = pb.common_pb2, pb.metering_pb2
    pb.metering_pb2_grpc.MeteringStub(third.authorized_channel(first.service_key())).Debit(m.DebitRequest(
        account_id="demo", workspace_id="w", agent_id="a", run_id="r", idempotency_key="k",
        line_items=[c.LineItem(tool_call=c.ToolCallUsage(integration="slack", calls=1))]), timeout=RPC_TIMEOUT_S)
    third.terminate()
    assert third.wait_exit(10) == 0
    assert "key filter stored" in third.log(), third.log_tail()  # a new key: stored again


@pytest.mark.parametrize("command", [["serve"], ["audit"], ["load"], ["keys", "list"],
                                     ["keys", "create", "--name", "a", "--scope", "metering:read"],
                                     ["keys", "revoke", "abcdefabcdef"]])
def test_a_mistyped_option_is_named_before_any_file_check(tmp_path, command):
    """Outside the repository (no config/catalog.json, no var/): a mistyped
    option was reported as the default catalog or database missing —
    telling an operator who mistyped --catalog or --db to set it (session
    28: `keys` said "no database", `call` "give a METHOD")."""
    result = subprocess.run([str(billing_binary()), *command, "--bogus", "1"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=CLI_TIMEOUT_S, env={k: v for k, v in os.environ.items() if k != "BILLING_KEY"})
    assert result.returncode == 64, shown(result)
    assert "Unknown option '--bogus'" in result.stderr, shown(result)
    assert list(tmp_path.iterdir()) == []


def test_a_mistyped_option_of_call_is_named_not_taken_for_a_missing_method():
    result = cli("call", "--lst", key=None, timeout=CLI_TIMEOUT_S)
    assert result.returncode == 64, shown(result)
    assert "Unknown option '--lst'" in result.stderr and "METHOD" not in result.stderr, shown(result)
