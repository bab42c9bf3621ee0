"""Who may call what, over the network with grpcio: every RPC of the
Metering, Accounts, Payments and Admin services × every kind of caller,
against one server for the whole table.

The expected outcome of each cell is computed here from the rules as the
README states them ("Who may call what"), written down independently of the
server's access table; the test only reads Sources/BillingService/Access.swift
to prove that the table covers every method it lists (and the .proto files,
every method of the contract).

Outcomes:
- UNAUTHENTICATED: no, malformed, unknown, revoked or expired credentials,
  or a token that is not ours;
- PERMISSION_DENIED: a valid caller without the right (scope, role,
  service-only method);
- NOT_FOUND with ErrorInfo reason ACCOUNT_NOT_FOUND: a user asking about
  another account;
- allowed: anything else the method itself may answer (OK or a business
  refusal; never UNIMPLEMENTED: every method is served).
"""

import re
import secrets
import time
from dataclasses import dataclass, field

import grpc
import pytest

from conftest import ROOT, RPC_TIMEOUT_S, b64url, error_info, mint_jwt, user_claims

ACCESS_SWIFT = ROOT / "Sources" / "BillingService" / "Access.swift"
SERVICES = ("Metering", "Accounts", "Payments", "Admin")
DOMAIN = "billing.v1"
OTHER_ACCOUNT = "other-account"

# --------------------------------------------------------------------------
# The rules, from the README ("Who may call what"):
#   service(scope): service keys with the scope only (metering hot path, Admin, CreateAccount)
#   read(scope):    keys with the scope, or a user of the account who is Owner, Admin or has billing:read
#   act(scope):     keys with the scope, or an Owner or Admin of the account
#   member(scope):  keys with the scope, or any user of the account (the banners)

W, R, A = "metering:write", "metering:read", "accounts:admin"
SERVICE, READ, ACT, MEMBER = "service", "read", "act", "member"

RULES = {
    "/billing.v1.Metering/Debit": (SERVICE, W),
    "/billing.v1.Metering/DebitBatch": (SERVICE, W),
    "/billing.v1.Metering/Quote": (SERVICE, R),
    "/billing.v1.Metering/GetDebit": (SERVICE, R),
    "/billing.v1.Metering/GetExecutionCost": (READ, R),   # "execution costs"
    "/billing.v1.Metering/GetUsage": (READ, R),           # "usage"

    "/billing.v1.Accounts/CreateAccount": (SERVICE, A),
    "/billing.v1.Accounts/GetAccount": (READ, A),         # "account"
    "/billing.v1.Accounts/GetBanners": (MEMBER, A),       # the docs' "banner across the app"
    "/billing.v1.Accounts/ListPlans": (READ, A),          # "plans"
    "/billing.v1.Accounts/ChangePlan": (ACT, A),
    "/billing.v1.Accounts/CancelPendingChange": (ACT, A),

    "/billing.v1.Payments/PurchaseCredits": (ACT, A),
    "/billing.v1.Payments/SetPaymentMethod": (ACT, A),
    "/billing.v1.Payments/GetPaymentMethod": (READ, A),   # "payment method"
    "/billing.v1.Payments/ListCharges": (READ, A),        # "charges"
    "/billing.v1.Payments/ListInvoices": (READ, A),       # "invoices"
    "/billing.v1.Payments/GetInvoicePdf": (READ, A),      # "and their PDFs"
    "/billing.v1.Payments/PayInvoice": (ACT, A),

    "/billing.v1.Admin/GrantCredits": (SERVICE, A),
    "/billing.v1.Admin/SetEnterpriseContract": (SERVICE, A),
    "/billing.v1.Admin/CreateApiKey": (SERVICE, A),
    "/billing.v1.Admin/ListApiKeys": (SERVICE, A),
    "/billing.v1.Admin/RevokeApiKey": (SERVICE, A),
    "/billing.v1.Admin/AdvanceClock": (SERVICE, A),
    "/billing.v1.Admin/ListAuditLog": (SERVICE, A),
}
METHODS = sorted(RULES)


@dataclass(frozen=True)
class Caller:
    """Who calls. `kind`: "anonymous" (no header), "bad" (credentials that
    must not authenticate), "key" (a valid service key with `scopes`) or
    "user" (a valid token of `account` with `role` and `permissions`)."""
    name: str
    kind: str
    scopes: frozenset = frozenset()
    role: str = ""
    permissions: frozenset = frozenset()
    account: str = "demo"
    reason: str | None = None  # ErrorInfo reason the README or the issue names for a refusal


CALLERS = [
    Caller("no_token", "anonymous", reason="MISSING_CREDENTIALS"),
    Caller("malformed_scheme", "bad", reason="MALFORMED_CREDENTIALS"),  # authorization: Basic …
    Caller("malformed_key", "bad", reason="MALFORMED_CREDENTIALS"),  # Bearer bk_… of the wrong shape
    Caller("unknown_key", "bad", reason="INVALID_API_KEY"),  # a well-formed key that was never created
    Caller("wrong_secret_key", "bad", reason="INVALID_API_KEY"),  # the demo key's id with another secret
    Caller("bad_signature_jwt", "bad", reason="INVALID_TOKEN"),  # Owner of demo, signed with another secret
    Caller("expired_jwt", "bad", reason="INVALID_TOKEN"),  # Owner of demo, exp an hour ago (beyond the 60 s skew)
    Caller("revoked_key", "bad", reason="API_KEY_REVOKED"),  # had every scope
    Caller("expired_key", "bad", reason="API_KEY_EXPIRED"),  # every scope, expired (two seconds after it was made)
    Caller("key_metering_write", "key", scopes=frozenset({W})),
    Caller("key_metering_read", "key", scopes=frozenset({R})),
    Caller("key_accounts_admin", "key", scopes=frozenset({A})),
    Caller("key_all_scopes", "key", scopes=frozenset({W, R, A})),  # the demo key
]
# "finance": a custom role of the platform's (no rights of its own; billing:read reads).
for _role in ("owner", "admin", "member", "viewer", "finance"):
    CALLERS.append(Caller(f"{_role}_of_demo", "user", role=_role))
    CALLERS.append(Caller(f"{_role}_of_demo_billing_read", "user", role=_role,
                          permissions=frozenset({"billing:read"})))
CALLERS.append(Caller("owner_of_other_account", "user", role="owner", account=OTHER_ACCOUNT))

UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, ALLOWED = "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "allowed"


def expected(method: str, caller: Caller, requested_account: str = "demo") -> str:
    """The outcome the README's rules give `caller` calling `method` about `requested_account`."""
    kind, scope = RULES[method]
    if caller.kind in ("anonymous", "bad"):
        return UNAUTHENTICATED
    if caller.kind == "key":
        return ALLOWED if scope in caller.scopes else PERMISSION_DENIED
    assert caller.kind == "user"
    if kind == SERVICE:
        return PERMISSION_DENIED  # for service keys only, whoever the user and whatever the account
    if caller.account != requested_account:
        return NOT_FOUND          # another account: as if it did not exist
    if kind == MEMBER:
        return ALLOWED
    if kind == READ:
        may_read = caller.role in ("owner", "admin") or "billing:read" in caller.permissions
        return ALLOWED if may_read else PERMISSION_DENIED
    return ALLOWED if caller.role in ("owner", "admin") else PERMISSION_DENIED


def denial_reason(method: str, caller: Caller) -> str:
    """The ErrorInfo reason of a PERMISSION_DENIED `expected` gives."""
    kind, _ = RULES[method]
    if caller.kind == "key":
        return "MISSING_SCOPE"
    if kind == SERVICE:
        return "SERVICE_ONLY"
    return "BILLING_READ_REQUIRED" if kind == READ else "BILLING_ADMIN_REQUIRED"


# Statuses a method may answer once the caller is let in, for the requests
# below (every method is served: UNIMPLEMENTED is not among them).
BUSINESS = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.RESOURCE_EXHAUSTED}


# --------------------------------------------------------------------------
# A valid request of every method, about account "demo"


def requests(pb, victim_key_id: str) -> dict:
    m, c, a, p, ad = pb.metering_pb2, pb.common_pb2, pb.accounts_pb2, pb.payments_pb2, pb.admin_pb2
    items = [c.LineItem(llm=c.LlmUsage(model="gpt-4o", input_tokens=100, output_tokens=10)),
             c.LineItem(tool_call=c.ToolCallUsage(integration="slack", calls=1))]
    debit = m.DebitRequest(account_id="demo", workspace_id="w1", agent_id="a1", run_id="auth-run",
                           idempotency_key="auth-debit", line_items=items)
    card = p.PaymentMethodInput(card=p.CardInput(number="4242424242424242", exp_month=12, exp_year=2099,
                                                 holder_name="Demo Owner"))
    return {
        "/billing.v1.Metering/Debit": debit,
        "/billing.v1.Metering/DebitBatch": m.DebitBatchRequest(debits=[m.DebitRequest(
            account_id="demo", workspace_id="w1", agent_id="a1", run_id="auth-run",
            idempotency_key="auth-batch", line_items=items)]),
        "/billing.v1.Metering/Quote": m.QuoteRequest(account_id="demo", workspace_id="w1", agent_id="a1",
                                                     run_id="auth-run-2", line_items=items),
        "/billing.v1.Metering/GetDebit": m.GetDebitRequest(account_id="demo", idempotency_key="auth-debit"),
        "/billing.v1.Metering/GetExecutionCost": m.GetExecutionCostRequest(account_id="demo", run_id="auth-run"),
        "/billing.v1.Metering/GetUsage": m.GetUsageRequest(account_id="demo"),

        "/billing.v1.Accounts/CreateAccount": a.CreateAccountRequest(account_id="demo", display_name="again"),
        "/billing.v1.Accounts/GetAccount": a.GetAccountRequest(account_id="demo"),
        "/billing.v1.Accounts/GetBanners": a.GetBannersRequest(account_id="demo"),
        "/billing.v1.Accounts/ListPlans": a.ListPlansRequest(account_id="demo"),
        "/billing.v1.Accounts/ChangePlan": a.ChangePlanRequest(account_id="demo", to_plan=a.PLAN_PRO,
                                                               idempotency_key="auth-plan"),
        "/billing.v1.Accounts/CancelPendingChange": a.CancelPendingChangeRequest(account_id="demo"),

        "/billing.v1.Payments/PurchaseCredits": p.PurchaseCreditsRequest(account_id="demo", amount_micros=1_000_000,
                                                                         idempotency_key="auth-purchase"),
        "/billing.v1.Payments/SetPaymentMethod": p.SetPaymentMethodRequest(account_id="demo", payment_method=card),
        "/billing.v1.Payments/GetPaymentMethod": p.GetPaymentMethodRequest(account_id="demo"),
        "/billing.v1.Payments/ListCharges": p.ListChargesRequest(account_id="demo"),
        "/billing.v1.Payments/ListInvoices": p.ListInvoicesRequest(account_id="demo"),
        "/billing.v1.Payments/GetInvoicePdf": p.GetInvoicePdfRequest(account_id="demo", invoice_id="inv-1"),
        "/billing.v1.Payments/PayInvoice": p.PayInvoiceRequest(account_id="demo", invoice_id="inv-1",
                                                               idempotency_key="auth-pay"),

        "/billing.v1.Admin/GrantCredits": ad.GrantCreditsRequest(account_id="demo", amount_micros=1, reason="auth table",
                                                                 idempotency_key="auth-grant"),
        "/billing.v1.Admin/SetEnterpriseContract": ad.SetEnterpriseContractRequest(
            account_id="demo", contract=a.EnterpriseContract(contract_reference="C-1", period_price_micros=10_000, usage_rate_basis_points=10_000)),
        "/billing.v1.Admin/CreateApiKey": ad.CreateApiKeyRequest(name="auth table", scopes=[R]),
        "/billing.v1.Admin/ListApiKeys": ad.ListApiKeysRequest(include_revoked=True),
        "/billing.v1.Admin/RevokeApiKey": ad.RevokeApiKeyRequest(key_id=victim_key_id),  # revoked again: a no-op
        "/billing.v1.Admin/AdvanceClock": ad.AdvanceClockRequest(seconds=0),
        "/billing.v1.Admin/ListAuditLog": ad.ListAuditLogRequest(account_id="demo"),
    }


# --------------------------------------------------------------------------
# One server, its keys and tokens


@dataclass
class World:
    pb: object
    server: object
    secret: bytes
    tokens: dict = field(default_factory=dict)      # caller name -> authorization header value (None: no header)
    requests: dict = field(default_factory=dict)    # method -> request message
    channel: object = None

    def call(self, method: str, authorization: str | None, request=None):
        """(status code, ErrorInfo or None, details, trailing metadata) of one call."""
        request = self.requests[method] if request is None else request
        rpc = self.channel.unary_unary(method, request_serializer=lambda r: r.SerializeToString(),
                                       response_deserializer=None)
        metadata = [] if authorization is None else [("authorization", authorization)]
        try:
            rpc(request, metadata=metadata, timeout=RPC_TIMEOUT_S)
            return grpc.StatusCode.OK, None, "", ()
        except grpc.RpcError as error:
            return error.code(), error_info(self.pb, error), error.details() or "", error.trailing_metadata() or ()


def create_key(pb, admin, name, scopes):
    return admin.CreateApiKey(pb.admin_pb2.CreateApiKeyRequest(name=name, scopes=sorted(scopes)),
                              timeout=RPC_TIMEOUT_S)


@pytest.fixture(scope="module")
def world(pb, module_server, tmp_path_factory):
    secret_file = tmp_path_factory.mktemp("jwt") / "jwt-secret"
    secret_file.write_text(secrets.token_hex(32) + "\n")
    s = module_server(args=["--jwt-secret-file", str(secret_file), "--jwt-issuer", "platform",
                            "--jwt-audience", "billing"])
    world = World(pb, s, s.jwt_secret())
    world.channel = s.channel()
    admin = pb.admin_pb2_grpc.AdminStub(s.authorized_channel())
    demo_key = s.service_key()

    keys = {name: create_key(pb, admin, name, scopes).secret for name, scopes in [
        ("key_metering_write", {W}), ("key_metering_read", {R}), ("key_accounts_admin", {A})]}
    revoked = create_key(pb, admin, "revoked", {W, R, A})
    admin.RevokeApiKey(pb.admin_pb2.RevokeApiKeyRequest(key_id=revoked.key.key_id), timeout=RPC_TIMEOUT_S)
    # A key cannot be made expired (INVALID_FIELD): this one expires in five
    # seconds (room for a slow machine's create call), and the table waits
    # for that moment below.
    expires = int(time.time()) + 5
    expired = admin.CreateApiKey(pb.admin_pb2.CreateApiKeyRequest(
        name="expired", scopes=sorted({W, R, A}), expires_unix_seconds=expires), timeout=RPC_TIMEOUT_S)
    victim = create_key(pb, admin, "victim", {R})  # what RevokeApiKey revokes, again and again
    admin.RevokeApiKey(pb.admin_pb2.RevokeApiKeyRequest(key_id=victim.key.key_id), timeout=RPC_TIMEOUT_S)

    # Another account (it exists, so NOT_FOUND is about isolation, not
    # existence), and a debit of demo's run for GetExecutionCost to find.
    accounts = pb.accounts_pb2_grpc.AccountsStub(s.authorized_channel())
    accounts.CreateAccount(pb.accounts_pb2.CreateAccountRequest(account_id=OTHER_ACCOUNT), timeout=RPC_TIMEOUT_S)
    world.requests = requests(pb, victim.key.key_id)
    metering = pb.metering_pb2_grpc.MeteringStub(s.authorized_channel())
    metering.Debit(world.requests["/billing.v1.Metering/Debit"], timeout=RPC_TIMEOUT_S)

    unknown_key = "bk_" + secrets.token_hex(6) + "_" + demo_key[16:]  # right shape, another id
    now = int(time.time())
    bearer = "Bearer {}".format
    tokens = {
        "no_token": None,
        "malformed_scheme": "Basic ZGVtbzpkZW1v",
        "malformed_key": bearer("bk_0123_not-a-key"),
        "unknown_key": bearer(unknown_key),
        "wrong_secret_key": bearer(demo_key[:16] + b64url(secrets.token_bytes(32))),
        "bad_signature_jwt": bearer(mint_jwt(secrets.token_hex(32).encode(), user_claims(role="owner"))),
        "expired_jwt": bearer(mint_jwt(world.secret, user_claims(role="owner", now=now - 7200, ttl=3600))),
        "revoked_key": bearer(revoked.secret),
        "expired_key": bearer(expired.secret),
        "key_all_scopes": bearer(demo_key),
        **{name: bearer(key) for name, key in keys.items()},
    }
    for caller in CALLERS:
        if caller.kind == "user":
            tokens[caller.name] = bearer(mint_jwt(world.secret, user_claims(
                account_id=caller.account, role=caller.role, permissions=sorted(caller.permissions),
                sub=f"user-{caller.name}")))
    assert set(tokens) == {c.name for c in CALLERS}
    world.tokens = tokens
    time.sleep(max(0.0, expires + 1 - time.time()))  # the key's expiry passed (a known instant, not a race)
    return world


# --------------------------------------------------------------------------
# The table


def test_the_table_covers_every_method_of_access_swift_and_of_the_contract(pb):
    listed = set(re.findall(r'"(/billing\.v1\.[A-Za-z]+/[A-Za-z]+)"', ACCESS_SWIFT.read_text()))
    assert listed == set(RULES), f"Access.swift lists {sorted(listed ^ set(RULES))} differently from this table"
    contract = set()
    for module in (pb.metering_pb2, pb.accounts_pb2, pb.payments_pb2, pb.admin_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            assert service.name in SERVICES, service.full_name
            contract |= {f"/{service.full_name}/{method.name}" for method in service.methods}
    assert contract == set(RULES), f"the .proto files and this table differ on {sorted(contract ^ set(RULES))}"


def cases():
    for method in METHODS:
        for caller in CALLERS:
            yield pytest.param(method, caller, id=f"{method.split('.v1.')[1]}-{caller.name}")


@pytest.mark.parametrize("method,caller", list(cases()))
def test_access(world, method, caller):
    authorization = world.tokens[caller.name]
    want = expected(method, caller)
    code, info, details, trailers = world.call(method, authorization)
    where = f"{method} as {caller.name}: expected {want}, got {code.name} {details!r} {info}"

    # No answer repeats the credential or any part of it.
    if authorization:
        token = authorization.split(" ", 1)[-1]
        parts = [token] + [part for part in re.split(r"[._]", token) if len(part) >= 16]
        text = details + " ".join(str(v) for _, v in trailers)
        assert not any(part in text for part in parts), f"{where}: the answer repeats the credential"

    if want == ALLOWED:
        assert code in BUSINESS, where
        if code == grpc.StatusCode.NOT_FOUND:
            assert info is not None and info.reason != "ACCOUNT_NOT_FOUND", f"{where}: demo exists"
        return
    assert code.name == want, where
    assert info is not None and info.domain == DOMAIN, f"{where}: no ErrorInfo of domain {DOMAIN}"
    if want == NOT_FOUND:
        assert info.reason == "ACCOUNT_NOT_FOUND", where
    if caller.reason is not None:
        assert info.reason == caller.reason, where
    if want == PERMISSION_DENIED:
        assert info.reason == denial_reason(method, caller), where


def refused_before_decoding(method: str, caller: Caller) -> str | None:
    """The reason a caller is refused without its request being read: a
    service key without the method's scope, a user on a method for service
    keys only. None when the refusal needs the request (a user's role is
    checked for the account the request names: another one is NOT_FOUND)."""
    kind, scope = RULES[method]
    if caller.kind == "key" and scope not in caller.scopes:
        return "MISSING_SCOPE"
    if caller.kind == "user" and kind == SERVICE:
        return "SERVICE_ONLY"
    return None


def garbage_cases():
    for method in METHODS:
        for caller in CALLERS:
            if refused_before_decoding(method, caller):
                yield pytest.param(method, caller, id=f"{method.split('.v1.')[1]}-{caller.name}")


@pytest.mark.parametrize("method,caller", list(garbage_cases()))
def test_a_caller_without_the_right_is_refused_before_its_message_is_read(world, method, caller):
    # Not a protobuf message (field 31 with wire type 7): decoded first, it
    # was INVALID_ARGUMENT, and a key without the scope made the server
    # decode up to 4 MiB for nothing.
    rpc = world.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as refused:
        rpc(b"\xff\xff\xff", metadata=[("authorization", world.tokens[caller.name])], timeout=RPC_TIMEOUT_S)
    info = error_info(world.pb, refused.value)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value.details()
    assert info is not None and info.reason == refused_before_decoding(method, caller)


@pytest.mark.parametrize("caller", ["owner_of_demo", "key_metering_write"])
def test_a_caller_with_the_right_still_hears_that_its_message_does_not_decode(world, caller):
    rpc = world.channel.unary_unary("/billing.v1.Metering/Debit" if caller.startswith("key") else
                                    "/billing.v1.Accounts/GetAccount", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as refused:
        rpc(b"\xff\xff\xff", metadata=[("authorization", world.tokens[caller])], timeout=RPC_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()


# --------------------------------------------------------------------------
# Beyond the table: the health check, and what makes a token acceptable


def test_health_check_needs_no_credentials(world):
    assert world.server.health(world.server.channel()) == 1  # SERVING


def test_table_expectations_are_what_the_readme_says():
    """The expectation function on the README's own examples."""
    owner, member = CALLERS[[c.name for c in CALLERS].index("owner_of_demo")], Caller("m", "user", role="member")
    reader = Caller("r", "user", role="viewer", permissions=frozenset({"billing:read"}))
    assert expected("/billing.v1.Metering/Debit", owner) == PERMISSION_DENIED          # hot path: keys only
    assert expected("/billing.v1.Admin/GrantCredits", owner) == PERMISSION_DENIED      # Admin: keys only
    assert expected("/billing.v1.Payments/ListInvoices", reader) == ALLOWED            # billing:read reads
    assert expected("/billing.v1.Payments/PayInvoice", reader) == PERMISSION_DENIED    # but does not act
    assert expected("/billing.v1.Accounts/GetAccount", member) == PERMISSION_DENIED
    assert expected("/billing.v1.Accounts/ChangePlan", owner) == ALLOWED
    assert expected("/billing.v1.Accounts/ChangePlan", owner, "acme") == NOT_FOUND
    assert expected("/billing.v1.Metering/Quote", Caller("k", "key", scopes=frozenset({W}))) == PERMISSION_DENIED


GET_USAGE = "/billing.v1.Metering/GetUsage"


def token_cases():
    """(name, claims to change (times relative to now; None removes a claim), accepted?)"""
    return [
        ("valid", {}, True),
        ("role_in_capitals", {"role": "Owner"}, True),
        ("audience_list_with_ours", {"aud": ["other", "billing"]}, True),
        ("expired_within_the_60s_skew", {"iat": -600, "exp": -30}, True),
        ("nbf_within_the_60s_skew", {"nbf": 30}, True),
        ("expired_beyond_the_skew", {"iat": -600, "exp": -120}, False),
        ("nbf_in_the_future", {"nbf": 300}, False),
        ("iat_in_the_future", {"iat": 300, "exp": 900}, False),
        ("wrong_issuer", {"iss": "someone-else"}, False),
        ("wrong_audience", {"aud": "payments"}, False),
        ("audience_list_without_ours", {"aud": ["payments", "crm"]}, False),
        ("no_exp", {"exp": None}, False),
        ("no_issuer", {"iss": None}, False),
        ("no_audience", {"aud": None}, False),
        ("no_account", {"account_id": None}, False),
        ("no_subject", {"sub": None}, False),
        ("no_role", {"role": None}, False),
        ("empty_role", {"role": ""}, False),
        ("role_not_a_string", {"role": ["owner"]}, False),
        ("permissions_not_a_list", {"permissions": "billing:read"}, False),
        ("exp_not_an_integer", {"exp": "tomorrow"}, False),
        ("exp_a_fraction", {"exp": 4102444800.5}, False),
    ]


@pytest.mark.parametrize("name,changes,accepted", token_cases(), ids=[c[0] for c in token_cases()])
def test_token_claims(world, name, changes, accepted):
    now = int(time.time())
    claims = user_claims(role="owner", now=now)
    for claim, value in changes.items():
        if claim in ("iat", "exp", "nbf") and isinstance(value, int) and abs(value) < 100_000:
            value = now + value  # relative to now
        claims[claim] = value
    claims = {k: v for k, v in claims.items() if v is not None}
    code, info, details, _ = world.call(GET_USAGE, "Bearer " + mint_jwt(world.secret, claims))
    if accepted:
        assert code == grpc.StatusCode.OK, f"{name}: {code.name} {details} ({claims})"
    else:
        assert code == grpc.StatusCode.UNAUTHENTICATED, f"{name}: {code.name} {details} ({claims})"
        assert info is not None and info.domain == DOMAIN, info


def test_a_users_action_is_audited_under_its_user_id(world, pb):
    """The audit log names a user who acted by the token's subject
    (`user:<sub>`), not by their account or role."""
    p = pb.payments_pb2
    card = p.PaymentMethodInput(card=p.CardInput(number="4242424242424242", exp_month=12, exp_year=2099))
    code, _, details, _ = world.call("/billing.v1.Payments/SetPaymentMethod", world.tokens["owner_of_other_account"],
                                     p.SetPaymentMethodRequest(account_id=OTHER_ACCOUNT, payment_method=card))
    assert code == grpc.StatusCode.OK, details
    admin = pb.admin_pb2_grpc.AdminStub(world.server.authorized_channel())
    entries = admin.ListAuditLog(pb.admin_pb2.ListAuditLogRequest(account_id=OTHER_ACCOUNT), timeout=RPC_TIMEOUT_S).entries
    assert ("SetPaymentMethod", "user:user-owner_of_other_account") in [(e.action, e.actor) for e in entries], entries


def test_the_issuer_and_audience_flags_name_what_tokens_must_carry(pb, server, tmp_path):
    # The table's server runs with the flags' defaults: one with others
    # shows the flags are used (a server ignoring them took the defaults).
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text(secrets.token_hex(32) + "\n")
    s = server(args=["--jwt-secret-file", str(secret_file), "--jwt-issuer", "idp.example", "--jwt-audience", "billing-2"])
    channel = s.channel()
    usage = channel.unary_unary(GET_USAGE, request_serializer=lambda r: r.SerializeToString(), response_deserializer=None)
    request = pb.metering_pb2.GetUsageRequest(account_id="demo")

    def answer(**claims):
        token = mint_jwt(s.jwt_secret(), user_claims(role="owner", **claims))
        try:
            usage(request, metadata=[("authorization", "Bearer " + token)], timeout=RPC_TIMEOUT_S)
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()

    assert answer(issuer="idp.example", audience="billing-2") == grpc.StatusCode.OK
    assert answer(issuer="platform", audience="billing") == grpc.StatusCode.UNAUTHENTICATED
    assert answer(issuer="idp.example", audience="billing") == grpc.StatusCode.UNAUTHENTICATED
    assert answer(issuer="platform", audience="billing-2") == grpc.StatusCode.UNAUTHENTICATED


def test_a_binary_jwt_secret_is_used_byte_for_byte(pb, server, tmp_path):
    """A secret file that is not text (random bytes) is the key as it is:
    read as UTF-8, its invalid bytes became U+FFFD and no platform token
    verified (and secrets differing only there verified each other's)."""
    raw = b"\xff\xfe" + secrets.token_bytes(28) + b"\x80\n\x00 "
    secret_file = tmp_path / "jwt-secret.bin"
    secret_file.write_bytes(raw)
    s = server(args=["--jwt-secret-file", str(secret_file)])
    channel = s.channel()
    usage = channel.unary_unary(GET_USAGE, request_serializer=lambda r: r.SerializeToString(), response_deserializer=None)

    def answer(secret):
        token = mint_jwt(secret, user_claims(role="owner"))
        try:
            usage(pb.metering_pb2.GetUsageRequest(account_id="demo"), metadata=[("authorization", "Bearer " + token)],
                  timeout=RPC_TIMEOUT_S)
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()

    assert answer(raw) == grpc.StatusCode.OK
    assert answer(raw.decode("utf-8", errors="replace").encode()) == grpc.StatusCode.UNAUTHENTICATED
    assert answer(raw.strip()) == grpc.StatusCode.UNAUTHENTICATED


def test_the_demo_owner_token_reads_demo(world):
    code, _, details, _ = world.call(GET_USAGE, "Bearer " + world.server.owner_token())
    assert code == grpc.StatusCode.OK, details


@pytest.mark.parametrize("header", ["bearer {}", "BEARER {}", "Bearer {}"])
def test_the_scheme_is_case_insensitive(world, header):
    code, _, details, _ = world.call("/billing.v1.Metering/Quote", header.format(world.server.service_key()))
    assert code == grpc.StatusCode.OK, details


@pytest.mark.parametrize("header", ["Bearer  {}", "Bearer{}", "{}", "Bearer {}x",
                                    "Bearer {}=", "Token {}"])
def test_malformed_headers_around_a_valid_key(world, header):
    code, info, details, _ = world.call("/billing.v1.Metering/Quote", header.format(world.server.service_key()))
    assert code == grpc.StatusCode.UNAUTHENTICATED, f"{header!r}: {code.name} {details}"
    assert info is not None and info.domain == DOMAIN


@pytest.mark.parametrize("permissions", [["BILLING:READ"], ["billing:read "], [" billing:read"], ["billing:*"],
                                         ["billing"], ["billing:write"], ["billing:read\u0000"], ["*"],
                                         ["billing:reads"], ["billing: read"]])
def test_lookalike_permissions_grant_nothing(world, permissions):
    token = mint_jwt(world.secret, user_claims(role="member", permissions=permissions))
    code, info, details, _ = world.call(GET_USAGE, "Bearer " + token)
    assert code == grpc.StatusCode.PERMISSION_DENIED, f"{permissions}: {code.name} {details}"


def test_a_user_of_an_account_that_does_not_exist_finds_nothing(world):
    token = mint_jwt(world.secret, user_claims(account_id="ghost", role="owner"))
    code, info, details, _ = world.call(GET_USAGE, "Bearer " + token, world.pb.metering_pb2.GetUsageRequest(
        account_id="ghost"))
    assert code == grpc.StatusCode.NOT_FOUND and info.reason == "ACCOUNT_NOT_FOUND", (code, details)


@pytest.mark.parametrize("role, permissions, allowed", [("owner", [], True), ("member", ["billing:read"], True),
                                                        ("member", [], False), ("viewer", [], False),
                                                        ("finance", ["billing:read"], True), ("finance", [], False)])
def test_the_plan_table_without_an_account_is_for_whoever_may_read_billing(world, role, permissions, allowed):
    """ListPlans' account_id is optional: left out, a user is checked as for
    their own account (it once answered NOT_FOUND "account  does not exist")."""
    token = mint_jwt(world.secret, user_claims(role=role, permissions=permissions))
    code, info, details, _ = world.call("/billing.v1.Accounts/ListPlans", "Bearer " + token,
                                        world.pb.accounts_pb2.ListPlansRequest())
    if allowed:
        assert code == grpc.StatusCode.OK, (role, permissions, code, details)
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED and info.reason == "BILLING_READ_REQUIRED", (code, details)


@pytest.mark.parametrize("who", ["owner", "service"])
def test_a_request_that_must_name_its_account_and_does_not_is_a_missing_field_for_everyone(world, who):
    """A user's token was answered NOT_FOUND "account  does not exist", a
    service key INVALID_ARGUMENT: the same bad request, one answer."""
    credential = world.server.service_key() if who == "service" else mint_jwt(world.secret, user_claims(role="owner"))
    code, info, details, _ = world.call("/billing.v1.Payments/ListCharges", "Bearer " + credential,
                                        world.pb.payments_pb2.ListChargesRequest())
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "MISSING_FIELD", (who, code, details)
    assert info.metadata["field"] == "account_id"
    # A caller without the right is told that first (a user's token on a
    # service-only method, a key without the scope), missing field or not.
    for credential, method, request, reason in (
            (mint_jwt(world.secret, user_claims(role="owner")), "/billing.v1.Metering/Debit",
             world.pb.metering_pb2.DebitRequest(), "SERVICE_ONLY"),
            (mint_jwt(world.secret, user_claims(role="member")), "/billing.v1.Payments/ListCharges",
             world.pb.payments_pb2.ListChargesRequest(), "BILLING_READ_REQUIRED")):
        code, info, details, _ = world.call(method, "Bearer " + credential, request)
        assert code == grpc.StatusCode.PERMISSION_DENIED and info.reason == reason, (method, code, details)


@pytest.mark.parametrize("since, ok", [(9_223_372_036_854, True), (9_223_372_036_855, False), (2**63 - 1, False)])
def test_an_audit_log_since_past_the_largest_instant_is_refused_and_the_server_stays_up(world, since, ok):
    """since_unix_seconds * 1,000,000 once overflowed Int64 and stopped the process."""
    code, info, details, _ = world.call("/billing.v1.Admin/ListAuditLog", "Bearer " + world.server.service_key(),
                                        world.pb.admin_pb2.ListAuditLogRequest(since_unix_seconds=since))
    if ok:
        assert code == grpc.StatusCode.OK, details
    else:
        assert code == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "INVALID_FIELD", (code, details)
    code, _, details, _ = world.call("/billing.v1.Metering/Quote", "Bearer " + world.server.service_key())
    assert code == grpc.StatusCode.OK, details
