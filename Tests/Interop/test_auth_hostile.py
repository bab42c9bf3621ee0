"""Tests that try to get in: forged and confused tokens, a token of one
account reaching for another, header injection and duplicate credentials on
a raw HTTP/2 stream, oversized tokens, SQL metacharacters in every string
field of the metering and admin requests, and revocation taking effect on
the very next call (with the audit trail of who did it).
"""

import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import subprocess
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

import h2peer
from conftest import ROOT, RPC_TIMEOUT_S, b64url, billing_binary, error_info, mint_jwt, user_claims
from h2peer import RawPeer

DOMAIN = "billing.v1"
QUOTE = "/billing.v1.Metering/Quote"
GET_USAGE = "/billing.v1.Metering/GetUsage"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
REACTION_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def served(module_server, tmp_path_factory):
    """One server for the module (the tests use accounts of their own)."""
    secret_file = tmp_path_factory.mktemp("jwt") / "jwt-secret"
    secret_file.write_text(secrets.token_hex(32))
    return module_server(args=["--jwt-secret-file", str(secret_file)])


class Client:
    """grpcio calls with any authorization value (None: no header)."""

    def __init__(self, pb, s):
        self.pb = pb
        self.s = s
        self.channel = s.channel()
        self.key = s.service_key()
        keyed = s.authorized_channel()
        self.metering = pb.metering_pb2_grpc.MeteringStub(keyed)
        self.accounts = pb.accounts_pb2_grpc.AccountsStub(keyed)
        self.admin = pb.admin_pb2_grpc.AdminStub(keyed)

    def call(self, path, request, authorization):
        """(code, ErrorInfo or None, details, response bytes or None)."""
        rpc = self.channel.unary_unary(path, request_serializer=lambda r: r.SerializeToString(),
                                       response_deserializer=None)
        metadata = [] if authorization is None else [("authorization", authorization)]
        try:
            return grpc.StatusCode.OK, None, "", rpc(request, metadata=metadata, timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            return error.code(), error_info(self.pb, error), error.details() or "", None

    def usage_request(self, account="demo"):
        return self.pb.metering_pb2.GetUsageRequest(account_id=account)

    def quote_request(self, account="demo"):
        c = self.pb.common_pb2
        return self.pb.metering_pb2.QuoteRequest(account_id=account, line_items=[
            c.LineItem(tool_call=c.ToolCallUsage(integration="http", calls=0))])

    def balance(self, account):
        return self.metering.Quote(self.quote_request(account), timeout=RPC_TIMEOUT_S).balance_micros

    def usage(self, account):
        m = self.pb.metering_pb2
        return self.metering.GetUsage(m.GetUsageRequest(account_id=account, group_by=[
            m.USAGE_GROUP_BY_DAY, m.USAGE_GROUP_BY_AGENT, m.USAGE_GROUP_BY_LINE_ITEM]), timeout=RPC_TIMEOUT_S)

    def create(self, account, credits=0):
        self.accounts.CreateAccount(self.pb.accounts_pb2.CreateAccountRequest(account_id=account),
                                    timeout=RPC_TIMEOUT_S)
        if credits:
            self.admin.GrantCredits(self.pb.admin_pb2.GrantCreditsRequest(
                account_id=account, amount_micros=credits, reason="test", idempotency_key=f"grant-{account}"),
                timeout=RPC_TIMEOUT_S)

    def debit(self, account, key, integration="slack", calls=1, run="r1"):
        c, m = self.pb.common_pb2, self.pb.metering_pb2
        return self.metering.Debit(m.DebitRequest(
            account_id=account, workspace_id="w1", agent_id="a1", run_id=run, idempotency_key=key,
            line_items=[c.LineItem(tool_call=c.ToolCallUsage(integration=integration, calls=calls))]),
            timeout=RPC_TIMEOUT_S)


@pytest.fixture(scope="module")
def client(pb, served):
    return Client(pb, served)


def assert_unauthenticated(outcome, what):
    code, info, details, _ = outcome
    assert code == grpc.StatusCode.UNAUTHENTICATED, f"{what}: {code.name} {details}"
    assert info is not None and info.domain == DOMAIN, f"{what}: {info}"


# --------------------------------------------------------------------------
# Forged tokens


def test_alg_none_is_refused(client):
    secret = client.s.jwt_secret()
    claims = user_claims(role="owner")
    for alg in ("none", "None", "NONE", "nOnE", ""):
        # Unsigned, as RFC 7519 §6 has it, and with trailing garbage instead of a signature.
        assert_unauthenticated(client.call(GET_USAGE, client.usage_request(),
                                           "Bearer " + mint_jwt(secret, claims, alg=alg)), f"alg {alg!r}, unsigned")
        assert_unauthenticated(client.call(GET_USAGE, client.usage_request(), "Bearer " + mint_jwt(
            secret, claims, alg=alg, signature=b"x")), f"alg {alg!r}, junk signature")
        # alg none over a valid HS256 signature of that very input: the header decides nothing.
        unsigned = mint_jwt(secret, claims, alg=alg)
        signing_input = unsigned.rsplit(".", 1)[0]
        sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert_unauthenticated(client.call(GET_USAGE, client.usage_request(),
                                           f"Bearer {signing_input}.{b64url(sig)}"), f"alg {alg!r}, HS256-signed")
    # No alg at all; alg not a string.
    for header in ({"typ": "JWT"}, {"alg": None}, {"alg": ["HS256"]}, {"alg": "HS256", "crit": ["exp"]}):
        assert_unauthenticated(client.call(GET_USAGE, client.usage_request(),
                                           "Bearer " + mint_jwt(secret, claims, header=header)), f"header {header}")
    # The control: the same claims, properly signed, are accepted.
    code, _, details, _ = client.call(GET_USAGE, client.usage_request(), "Bearer " + mint_jwt(secret, claims))
    assert code == grpc.StatusCode.OK, details


def test_token_signed_with_another_key_is_refused(client):
    secret = client.s.jwt_secret()
    claims = user_claims(role="owner")
    for other in (secrets.token_hex(32).encode(), secret[:-1], secret + b"x", secret.upper(), b"", b"billing"):
        assert_unauthenticated(client.call(GET_USAGE, client.usage_request(), "Bearer " + mint_jwt(other, claims)),
                               f"secret {len(other)} bytes")
    # A valid signature moved onto other claims.
    good = mint_jwt(secret, claims)
    forged = mint_jwt(secret, user_claims(role="owner", account_id="acme")).rsplit(".", 1)[0] + "." + \
        good.rsplit(".", 1)[1]
    assert_unauthenticated(client.call(GET_USAGE, client.usage_request("acme"), "Bearer " + forged), "moved signature")
    # A signature truncated, or one bit off.
    head, sig = good.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    for bad in (raw[:-1], raw + b"\0", bytes([raw[0] ^ 1]) + raw[1:], b""):
        assert_unauthenticated(client.call(GET_USAGE, client.usage_request(), f"Bearer {head}.{b64url(bytes(bad))}"),
                               "tampered signature")


def test_other_hmac_algorithms_are_refused(client):
    """HS384/HS512 signed with the right secret, and HS256 headers over
    HS512 signatures: only HS256 is accepted, whatever the header says."""
    secret = client.s.jwt_secret()
    claims = user_claims(role="owner")
    for alg in ("HS512", "HS384", "RS256", "ES256", "hs256", "HS256 "):
        assert_unauthenticated(client.call(GET_USAGE, client.usage_request(),
                                           "Bearer " + mint_jwt(secret, claims, alg=alg)), alg)
    unsigned = mint_jwt(secret, claims).rsplit(".", 1)[0]
    for digest in (hashlib.sha512, hashlib.sha384, hashlib.sha1):
        sig = hmac.new(secret, unsigned.encode(), digest).digest()
        assert_unauthenticated(client.call(GET_USAGE, client.usage_request(), f"Bearer {unsigned}.{b64url(sig)}"),
                               f"HS256 header, {digest().name} signature")


# --------------------------------------------------------------------------
# One account's token reaching for another


def test_a_huge_group_by_is_refused_before_it_is_decoded(client):
    """GetUsage's `group_by` is counted on the wire: 1 MiB of packed values
    (16 MiB once decoded) from any token holder, about any account, is
    refused at once as the handler refuses a fourth dimension — it used to be
    decoded first, then refused for the account."""
    c = client
    token = "Bearer " + mint_jwt(c.s.jwt_secret(), user_claims(account_id="tenant-x", role="viewer"))
    account = b"tenant-elsewhere"
    values = b"\x01" * (1 << 20)
    length, size = b"", len(values)
    while size >= 0x80:
        length, size = length + bytes([size & 0x7F | 0x80]), size >> 7
    body = b"\x0a" + bytes([len(account)]) + account + b"\x22" + length + bytes([size]) + values
    rpc = c.channel.unary_unary(GET_USAGE, request_serializer=lambda b: b, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as caught:
        rpc(body, metadata=[("authorization", token)], timeout=RPC_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    info = error_info(c.pb, caught.value)
    assert info is not None and info.reason == "INVALID_FIELD" and dict(info.metadata) == {"field": "group_by"}, info
    # Three dimensions in the same packed form are a request like any other (here: not this caller's account).
    small = b"\x0a" + bytes([len(account)]) + account + b"\x22\x03\x01\x02\x03"
    with pytest.raises(grpc.RpcError) as caught:
        rpc(small, metadata=[("authorization", token)], timeout=RPC_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value.details()


def test_a_token_for_account_a_cannot_reach_account_b(client, verify):
    c = client
    c.create("tenant-a", credits=1_000_000)
    c.create("tenant-b", credits=5_000_000)
    c.debit("tenant-b", "b-1", calls=3, run="b-run")
    before = (c.balance("tenant-b"), c.usage("tenant-b"))
    secret = c.s.jwt_secret()
    m, a, p = c.pb.metering_pb2, c.pb.accounts_pb2, c.pb.payments_pb2

    def about(account):
        return [
            (GET_USAGE, m.GetUsageRequest(account_id=account)),
            ("/billing.v1.Metering/GetExecutionCost", m.GetExecutionCostRequest(account_id=account, run_id="b-run")),
        ]

    for role in ("owner", "admin", "member", "viewer"):
        token = "Bearer " + mint_jwt(secret, user_claims(account_id="tenant-a", role=role,
                                                         permissions=["billing:read"]))
        own = c.call(GET_USAGE, m.GetUsageRequest(account_id="tenant-a"), token)
        assert own[0] == grpc.StatusCode.OK, f"{role} of tenant-a cannot read tenant-a: {own}"
        for path, request in about("tenant-b"):
            code, info, details, _ = c.call(path, request, token)
            assert code == grpc.StatusCode.NOT_FOUND, f"{role} of A, {path} of B: {code.name} {details}"
            assert info is not None and info.reason == "ACCOUNT_NOT_FOUND", info
            assert "tenant-a" not in details
            # Existence does not leak: B answers exactly as an account that does not exist.
            request.account_id = "tenant-nobody"
            code2, info2, details2, _ = c.call(path, request, token)
            assert (code2, info2.reason, dict(info2.metadata)) == (code, info.reason, dict(info.metadata))
            assert details2.replace("tenant-nobody", "X") == details.replace("tenant-b", "X"), (details, details2)
        # Nor may A's users move B's money or read B's metering.
        for path, request in [
            ("/billing.v1.Metering/Debit", m.DebitRequest(
                account_id="tenant-b", workspace_id="w1", agent_id="a1", run_id="r", idempotency_key=f"a-{role}",
                line_items=[c.pb.common_pb2.LineItem(tool_call=c.pb.common_pb2.ToolCallUsage(
                    integration="slack", calls=1))])),
            ("/billing.v1.Metering/GetDebit", m.GetDebitRequest(account_id="tenant-b", idempotency_key="b-1")),
            (QUOTE, c.quote_request("tenant-b")),
            ("/billing.v1.Admin/GrantCredits", c.pb.admin_pb2.GrantCreditsRequest(
                account_id="tenant-a", amount_micros=1, idempotency_key=f"a-{role}")),
            ("/billing.v1.Payments/PurchaseCredits", p.PurchaseCreditsRequest(
                account_id="tenant-b", amount_micros=1_000_000, idempotency_key=f"a-{role}")),
            ("/billing.v1.Accounts/ChangePlan", a.ChangePlanRequest(account_id="tenant-b", to_plan=a.PLAN_FREE)),
        ]:
            code, info, details, _ = c.call(path, request, token)
            assert code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND), \
                f"{role} of A, {path} about B: {code.name} {details}"
    # A token whose account_id differs only in case or script is another
    # account; one with a space at an end or an invisible character breaks
    # an id's rules and is no valid token (session 29: it was another account too).
    for near, expected in (("Tenant-B", grpc.StatusCode.NOT_FOUND), ("tenant-\u0432", grpc.StatusCode.NOT_FOUND),
                           ("tenant-b ", grpc.StatusCode.UNAUTHENTICATED), (" tenant-b", grpc.StatusCode.UNAUTHENTICATED),
                           ("tenant-b\u200b", grpc.StatusCode.UNAUTHENTICATED)):
        token = "Bearer " + mint_jwt(secret, user_claims(account_id=near, role="owner"))
        code, info, details, _ = c.call(GET_USAGE, m.GetUsageRequest(account_id="tenant-b"), token)
        assert code == expected, f"account_id {near!r}: {code.name} {details}"
    assert (c.balance("tenant-b"), c.usage("tenant-b")) == before, "tenant-b's data changed"
    assert c.balance("tenant-a") == 1_000_000
    verify(c.s.db_path)


# --------------------------------------------------------------------------
# Header injection and duplicate credentials, on a raw HTTP/2 stream


def raw_call(s, path, body, headers, timeout=REACTION_TIMEOUT_S):
    """One unary call on a fresh h2c connection with exactly `headers` as
    metadata (bytes or str values, sent as they are). Returns the peer
    after the stream ended (or the connection closed, or the timeout)."""
    peer = RawPeer(s.address)
    peer.start()
    peer.send(h2peer.headers_frames(1, h2peer.grpc_request_headers(path, extra=headers))
              + h2peer.data_frame(1, h2peer.grpc_message(body)))
    peer.read_until(lambda p: p.stream_done(1) or p.closed, timeout)
    peer.close()
    return peer


def raw_outcome(peer):
    """"status N" for a gRPC status, "reset" for RST_STREAM, "closed" for a
    connection closed (with or without GOAWAY), "hang" for none of them."""
    status = peer.response_headers(1).get("grpc-status")
    if status is not None:
        return f"status {status}"
    if any(f.type == h2peer.RST_STREAM for f in peer.stream_frames(1)):
        return "reset"
    if peer.closed or peer.goaway() is not None:
        return "closed"
    return "hang"


def test_grpcio_refuses_control_characters_in_metadata(client):
    """The reference client does not even send them; the raw tests below do."""
    for value in (f"Bearer {client.key}\r\nx: y", f"Bearer {client.key}\n", f"Bearer {client.key}\x00"):
        code, _, _, _ = client.call(QUOTE, client.quote_request(), value)
        assert code != grpc.StatusCode.OK


def injected_values(key: str, token: str) -> dict:
    return {
        "crlf_then_header": f"Bearer {key}\r\nx-injected: 1".encode(),
        "crlf_then_second_authorization": f"Bearer bk_000000000000_x\r\nauthorization: Bearer {key}".encode(),
        "trailing_lf": f"Bearer {key}\n".encode(),
        "trailing_cr": f"Bearer {key}\r".encode(),
        "trailing_nul": f"Bearer {key}\x00".encode(),
        "nul_then_junk": f"Bearer {key}\x00junk".encode(),
        "leading_nul": f"\x00Bearer {key}".encode(),
        "nul_inside_key": f"Bearer {key[:10]}\x00{key[10:]}".encode(),
        "tab_separator": f"Bearer\t{key}".encode(),
        "trailing_space": f"Bearer {key} ".encode(),
        "leading_space": f" Bearer {key}".encode(),
        "trailing_del": f"Bearer {key}\x7f".encode(),
        "trailing_obs_text": f"Bearer {key}".encode() + b"\xff",
        "utf8_in_key": f"Bearer {key[:-1]}é".encode(),
        "comma_list": f"Bearer {key}, Bearer {key}".encode(),
        "jwt_with_crlf": f"Bearer {token}\r\n".encode(),
    }


@pytest.mark.parametrize("name", list(injected_values("k", "t")))
def test_header_injection_never_authenticates(pb, served, name):
    s = served
    key = s.service_key()
    value = injected_values(key, s.owner_token())[name]
    body = Client(pb, s).quote_request().SerializeToString()
    peer = raw_call(s, QUOTE, body, [("authorization", value)])
    outcome = raw_outcome(peer)
    assert outcome in ("status 16", "reset", "closed"), f"{name}: {outcome}: {peer.describe()}"
    # The server goes on serving, and the clean key still works on a clean connection.
    s.assert_serving()
    clean = raw_call(s, QUOTE, body, [("authorization", f"Bearer {key}")])
    assert raw_outcome(clean) == "status 0", clean.describe()


def duplicate_cases(key, owner, other_owner):
    return {
        "same_key_twice": [key, key],
        "key_then_garbage": [key, "garbage"],
        "garbage_then_key": ["garbage", key],
        "key_then_unknown_key": [key, "bk_000000000000_" + key[16:]],
        "unknown_key_then_key": ["bk_000000000000_" + key[16:], key],
        "key_then_other_accounts_owner": [key, other_owner],
        "other_accounts_owner_then_owner": [other_owner, owner],
        "owner_then_other_accounts_owner": [owner, other_owner],
    }


# More than one `authorization` field is refused as malformed credentials.
@pytest.mark.parametrize("name", list(duplicate_cases("k" * 20, "o", "x")))
def test_duplicate_authorization_headers_never_authenticate(pb, served, name):
    """Two `authorization` fields: ambiguous credentials. Whichever one a
    proxy checked, the server must not pick one and go on: UNAUTHENTICATED
    or a stream error."""
    s = served
    key, owner = s.service_key(), s.owner_token()
    other_owner = mint_jwt(s.jwt_secret(), user_claims(account_id="acme", role="owner"))
    values = duplicate_cases(key, owner, other_owner)[name]
    # GetUsage of demo: allowed for the key and demo's Owner, NOT_FOUND for acme's Owner.
    body = pb.metering_pb2.GetUsageRequest(account_id="demo").SerializeToString()
    peer = raw_call(s, GET_USAGE, body, [("authorization", f"Bearer {v}") for v in values])
    outcome = raw_outcome(peer)
    assert outcome in ("status 16", "reset"), f"{name}: {outcome}: {peer.response_headers(1)}"
    s.assert_serving()


@pytest.mark.parametrize("name", ["Authorization", "AUTHORIZATION", "authorization ", "authorization\x00",
                                  "x-authorization", "grpc-authorization"])
def test_lookalike_header_names_do_not_authenticate(pb, served, name):
    s = served
    body = Client(pb, s).quote_request().SerializeToString()
    peer = raw_call(s, QUOTE, body, [(name, f"Bearer {s.service_key()}")])
    outcome = raw_outcome(peer)
    assert outcome in ("status 16", "reset", "closed"), f"{name!r}: {outcome}: {peer.describe()}"
    s.assert_serving()


# --------------------------------------------------------------------------
# Oversized tokens


def signed_token_of_size(secret: bytes, size: int) -> str:
    """A validly signed Owner token of demo, padded with a claim to `size` bytes."""
    claims = user_claims(role="owner", padding="")
    base = len(mint_jwt(secret, claims))
    claims["padding"] = "p" * ((size - base) * 3 // 4)
    token = mint_jwt(secret, claims)
    while len(token) < size:
        claims["padding"] += "p"
        token = mint_jwt(secret, claims)
    return token


def test_large_token_under_the_limit_is_fine(client):
    token = signed_token_of_size(client.s.jwt_secret(), 4 << 10)
    code, _, details, _ = client.call(GET_USAGE, client.usage_request(), "Bearer " + token)
    assert code == grpc.StatusCode.OK, details


@pytest.mark.parametrize("size", [9 << 10, 16 << 10])
def test_oversized_token_over_grpcio(client, size):
    """A validly signed token too large to read: refused, never accepted;
    the server stays up."""
    token = signed_token_of_size(client.s.jwt_secret(), size)
    code, info, details, _ = client.call(GET_USAGE, client.usage_request(), "Bearer " + token)
    allowed = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    if size >= 16 << 10:
        allowed.add(grpc.StatusCode.INTERNAL)  # how grpcio reports the stream reset for an oversized header list
    assert code in allowed, f"{size} bytes: {code.name} {details}"
    assert token[-20:] not in details
    client.s.assert_serving()


@pytest.mark.parametrize("size", [16 << 10, 64 << 10])
def test_oversized_token_over_raw_http2(pb, served, size):
    s = served
    token = signed_token_of_size(s.jwt_secret(), size)
    body = pb.metering_pb2.GetUsageRequest(account_id="demo").SerializeToString()
    with RawPeer(s.address) as peer:
        peer.start()
        peer.send(h2peer.headers_frames(1, h2peer.grpc_request_headers(GET_USAGE, [("authorization", f"Bearer {token}")]))
                  + h2peer.data_frame(1, h2peer.grpc_message(body)))
        assert peer.read_until(lambda p: p.stream_done(1) or p.closed, REACTION_TIMEOUT_S), peer.describe()
        outcome = raw_outcome(peer)
        assert outcome in ("status 16", "status 8", "reset", "closed"), f"{outcome}: {peer.describe()}"
        if not peer.closed:  # the connection goes on: a health check on it is served
            health = health_pb2.HealthCheckRequest(service="").SerializeToString()
            peer.send(h2peer.grpc_call(3, HEALTH_CHECK, health))
            assert peer.read_until(lambda p: p.stream_done(3), REACTION_TIMEOUT_S), peer.describe()
            assert peer.response_headers(3).get("grpc-status") == "0", peer.describe()
    s.assert_serving()


# --------------------------------------------------------------------------
# SQL metacharacters in every string field


HOSTILE = [
    "'; DROP TABLE journal; --",
    '" OR 1=1 --',
    "' OR '1'='1",
    "x' UNION SELECT seq, body FROM journal --",
    "Robert'); DELETE FROM journal WHERE ('1'='1",
    "\\'; DROP TABLE checkpoints; --\\",
    "back\\slash\\\\double",
    "%",
    "_",
    "d_mo",       # LIKE would match "demo"
    "de%",        # and so would this
    "100% off; --",
    "`ticks` [brackets] $1 ?1 :name @p",
    "/* comment */ --",
    "ünïcødé 名前 🚀 evil",  # (a direction override is refused in ids: INVALID_FIELD)
    "quote\"double'single",
]


def plain_ids():
    return [f"plain-{i}" for i in range(len(HOSTILE))]


def scenario(c, ident):
    """Every string field of the metering and admin requests set to
    `ident`, call after call; the outcome with `ident` replaced by <ID>
    and server-chosen ids left out, to compare with a plain id's."""
    pb = c.pb
    m, cm, ad = pb.metering_pb2, pb.common_pb2, pb.admin_pb2
    out = []

    def record(what, fn):
        try:
            value = fn()
        except grpc.RpcError as error:
            info = error_info(pb, error)
            value = (error.code().name, info.reason if info else None)
        out.append((what, json.dumps(normalized(value), default=str, ensure_ascii=False)))

    def normalized(value):
        """`ident` as a string, or at a string's start or end, becomes <ID>."""
        if isinstance(value, str):
            if value.startswith(ident):
                return "<ID>" + value[len(ident):]
            if value.endswith(ident):
                return value[:-len(ident)] + "<ID>"
            return value
        if isinstance(value, (list, tuple)):
            return [normalized(v) for v in value]
        return value

    def tool(name, calls):
        return cm.LineItem(tool_call=cm.ToolCallUsage(integration=name, calls=calls))

    def debit(key, items, account=ident):
        return m.DebitRequest(account_id=account, workspace_id=ident, agent_id=ident, run_id=ident,
                              idempotency_key=key, line_items=items)

    def debit_summary(r):
        return [list(r.line_item_amounts_micros), r.total_micros, r.balance_after_micros, r.catalog_version,
                r.covered_by_credits_micros, r.overage_micros]

    T = RPC_TIMEOUT_S
    record("debit unknown account", lambda: debit_summary(c.metering.Debit(debit(ident + "-u", [tool("slack", 1)]),
                                                                           timeout=T)))
    record("quote unknown account", lambda: c.metering.Quote(m.QuoteRequest(
        account_id=ident, line_items=[tool("slack", 1)]), timeout=T).total_micros)
    record("create", lambda: c.accounts.CreateAccount(pb.accounts_pb2.CreateAccountRequest(
        account_id=ident, display_name=ident, billing_email="billing@example.com"), timeout=T).account.account_id)
    record("create again", lambda: c.accounts.CreateAccount(pb.accounts_pb2.CreateAccountRequest(
        account_id=ident), timeout=T).account.account_id)
    grant = ad.GrantCreditsRequest(account_id=ident, amount_micros=5_000_000, reason=ident, idempotency_key=ident)
    record("grant", lambda: c.admin.GrantCredits(grant, timeout=T).credit_balance_micros)
    record("grant again", lambda: c.admin.GrantCredits(grant, timeout=T).credit_balance_micros)
    record("debit", lambda: debit_summary(c.metering.Debit(debit(ident, [tool(ident, 2)]), timeout=T)))
    record("debit again", lambda: debit_summary(c.metering.Debit(debit(ident, [tool(ident, 2)]), timeout=T)))
    record("debit key reused", lambda: debit_summary(c.metering.Debit(debit(ident, [tool(ident, 3)]), timeout=T)))
    record("debit unknown model", lambda: debit_summary(c.metering.Debit(debit(ident + "-m", [
        cm.LineItem(llm=cm.LlmUsage(model=ident, input_tokens=1))]), timeout=T)))
    def quote_summary(r):
        return [list(r.line_item_amounts_micros), r.total_micros, r.balance_micros, r.would_accept,
                r.refusal.reason, r.covered_by_credits_micros, r.overage_micros, r.catalog_version]
    record("quote", lambda: quote_summary(c.metering.Quote(m.QuoteRequest(
        account_id=ident, workspace_id=ident, agent_id=ident, run_id=ident, line_items=[tool(ident, 1)]), timeout=T)))
    record("quote new workspace", lambda: quote_summary(c.metering.Quote(m.QuoteRequest(
        account_id=ident, workspace_id=ident + "-2", agent_id=ident, run_id=ident + "-2",
        line_items=[tool(ident, 1)]), timeout=T)))
    record("batch", lambda: [debit_summary(r.accepted) if r.HasField("accepted") else r.refused.reason
                             for r in c.metering.DebitBatch(m.DebitBatchRequest(debits=[
                                 debit(ident + "-b", [tool(ident, 1)]), debit(ident, [tool(ident, 9)]),
                                 debit(ident + "-x", [tool(ident, 1)], account=ident + "-x")]), timeout=T).results])
    record("get debit", lambda: debit_summary(c.metering.GetDebit(m.GetDebitRequest(
        account_id=ident, idempotency_key=ident), timeout=T).debit))
    record("get debit wildcard", lambda: c.metering.GetDebit(m.GetDebitRequest(
        account_id=ident, idempotency_key=ident + "%"), timeout=T).outcome)
    record("execution cost", lambda: [(d.idempotency_key, d.workspace_id, d.agent_id, d.total_micros)
                                      for d in c.metering.GetExecutionCost(m.GetExecutionCostRequest(
                                          account_id=ident, run_id=ident), timeout=T).debits])
    record("execution cost wildcard", lambda: len(c.metering.GetExecutionCost(m.GetExecutionCostRequest(
        account_id=ident, run_id=ident + "%"), timeout=T).debits))
    record("usage", lambda: [(b.agent_id, b.line_item, b.amount_micros, b.quantity) for b in c.metering.GetUsage(
        m.GetUsageRequest(account_id=ident, group_by=[m.USAGE_GROUP_BY_AGENT, m.USAGE_GROUP_BY_LINE_ITEM]),
        timeout=T).buckets])
    record("key with unknown scope", lambda: c.admin.CreateApiKey(ad.CreateApiKeyRequest(
        name=ident, scopes=[ident]), timeout=T).key.name)
    created = {}

    def create_key():
        r = c.admin.CreateApiKey(ad.CreateApiKeyRequest(name=ident, scopes=["metering:read"]), timeout=T)
        created["key"] = r
        return [r.key.name, list(r.key.scopes), r.key.revoked]
    record("create key", create_key)
    key_id = created["key"].key.key_id if "key" in created else "none"
    record("list keys", lambda: [(k.name, list(k.scopes)) for k in c.admin.ListApiKeys(
        ad.ListApiKeysRequest(include_revoked=True), timeout=T).keys if k.key_id == key_id])
    if "key" in created:
        keyed = c.s.authorized_channel(created["key"].secret)
        record("new key quotes", lambda: pb.metering_pb2_grpc.MeteringStub(keyed).Quote(m.QuoteRequest(
            account_id=ident, line_items=[tool(ident, 1)]), timeout=T).total_micros)
    record("revoke unknown key id", lambda: c.admin.RevokeApiKey(ad.RevokeApiKeyRequest(key_id=ident),
                                                                 timeout=T).key.revoked)
    record("revoke key", lambda: c.admin.RevokeApiKey(ad.RevokeApiKeyRequest(key_id=key_id), timeout=T).key.revoked)
    record("audit of the account", lambda: [(e.action, e.account_id, e.details.get("note", ""),
                                             e.details.get("amount_micros", ""))
                                            for e in c.admin.ListAuditLog(ad.ListAuditLogRequest(
                                                account_id=ident), timeout=T).entries])
    record("audit page token", lambda: len(c.admin.ListAuditLog(ad.ListAuditLogRequest(
        page_token=ident), timeout=T).entries))
    record("enterprise contract", lambda: c.admin.SetEnterpriseContract(ad.SetEnterpriseContractRequest(
        account_id=ident, contract=pb.accounts_pb2.EnterpriseContract(
            contract_reference=ident, notes=ident, period_price_micros=10_000, usage_rate_basis_points=10_000,
            custom_invoice_lines=[pb.accounts_pb2.CustomInvoiceLine(description=ident, amount_micros=10_000)])),
        timeout=T).account.account_id)
    # The same strings as a user's claims (sub, account_id): the user reads their account.
    owner = c.s.authorized_channel(mint_jwt(c.s.jwt_secret(), user_claims(account_id=ident, sub=ident, role="owner")))
    user = pb.metering_pb2_grpc.MeteringStub(owner)
    record("owner reads usage", lambda: [(b.agent_id, b.amount_micros) for b in user.GetUsage(m.GetUsageRequest(
        account_id=ident, group_by=[m.USAGE_GROUP_BY_AGENT]), timeout=T).buckets])
    record("owner reads execution cost", lambda: [d.idempotency_key for d in user.GetExecutionCost(
        m.GetExecutionCostRequest(account_id=ident, run_id=ident), timeout=T).debits])
    record("owner asks about demo", lambda: len(user.GetUsage(m.GetUsageRequest(account_id="demo"),
                                                              timeout=T).buckets))
    record("balance", lambda: c.balance(ident))
    return out


def test_sql_metacharacters_in_every_string_field_are_just_data(client, served, verify):
    c = client
    c.create("acme", credits=10_000_000)
    c.debit("acme", "acme-1", calls=5, run="acme-run")
    audit = c.pb.admin_pb2.ListAuditLogRequest

    def snapshot():
        return (c.balance("demo"), c.usage("demo"), c.balance("acme"), c.usage("acme"),
                c.admin.ListAuditLog(audit(account_id="acme"), timeout=RPC_TIMEOUT_S),
                c.admin.ListAuditLog(audit(account_id="demo"), timeout=RPC_TIMEOUT_S))

    before = snapshot()
    for hostile, plain in zip(HOSTILE, plain_ids()):
        got, want = scenario(c, hostile), scenario(c, plain)
        want = [(what, text.replace(plain, "<ID>")) for what, text in want]
        for (what, g), (_, w) in zip(got, want):
            assert g == w, f"{hostile!r}, {what}: {g} (a plain id: {w})"
        assert len(got) == len(want)
    assert snapshot() == before, "acme's or demo's data changed"

    verify(served.db_path)  # replays the whole journal: it is still there, every entry consistent
    db = sqlite3.connect(f"file:{served.db_path}?mode=ro", uri=True, timeout=10)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"journal", "checkpoints", "schema_migrations"} <= tables, tables
        # Entries, not rows: a commit's debits share rows (migration 0005).
        assert db.execute("SELECT coalesce(max(seq + entries - 1), 0) FROM journal").fetchone()[0] > 4 * len(HOSTILE)
    finally:
        db.close()


# --------------------------------------------------------------------------
# Revocation, and who did it


def audit_lines(db_path):
    result = subprocess.run([str(billing_binary()), "audit", "--db", str(db_path), "--limit", "1000"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_revocation_takes_effect_on_the_next_call(client, served):
    c = client
    demo_key_id = c.key[3:15]
    created = c.admin.CreateApiKey(c.pb.admin_pb2.CreateApiKeyRequest(
        name="to revoke", scopes=["metering:read", "metering:write"]), timeout=RPC_TIMEOUT_S)
    key_id, secret = created.key.key_id, created.secret
    assert secret.startswith(f"bk_{key_id}_") and created.key.created_by == f"key:{demo_key_id}"
    channel = served.authorized_channel(secret)  # one connection, before and after
    stub = c.pb.metering_pb2_grpc.MeteringStub(channel)
    for _ in range(3):
        stub.Quote(c.quote_request(), timeout=RPC_TIMEOUT_S)

    revoked = c.admin.RevokeApiKey(c.pb.admin_pb2.RevokeApiKeyRequest(key_id=key_id), timeout=RPC_TIMEOUT_S)
    assert revoked.key.revoked and revoked.key.revoked_unix_seconds > 0
    with pytest.raises(grpc.RpcError) as refused:
        stub.Quote(c.quote_request(), timeout=RPC_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value.details()
    info = error_info(c.pb, refused.value)
    assert info is not None and (info.domain, info.reason) == (DOMAIN, "API_KEY_REVOKED"), info
    assert secret not in refused.value.details() and secret[16:] not in refused.value.details()
    # On a new connection too, for every method; the other keys are unaffected.
    assert_unauthenticated(c.call(GET_USAGE, c.usage_request(), f"Bearer {secret}"), "revoked, new connection")
    c.metering.Quote(c.quote_request(), timeout=RPC_TIMEOUT_S)
    # Revoking again is a no-op; the key stays listed as revoked.
    again = c.admin.RevokeApiKey(c.pb.admin_pb2.RevokeApiKeyRequest(key_id=key_id), timeout=RPC_TIMEOUT_S)
    assert again.key.revoked_unix_seconds == revoked.key.revoked_unix_seconds
    listed = c.admin.ListApiKeys(c.pb.admin_pb2.ListApiKeysRequest(include_revoked=True), timeout=RPC_TIMEOUT_S)
    assert [k.revoked for k in listed.keys if k.key_id == key_id] == [True]
    active = c.admin.ListApiKeys(c.pb.admin_pb2.ListApiKeysRequest(), timeout=RPC_TIMEOUT_S)
    assert key_id not in [k.key_id for k in active.keys]
    assert not any(secret in str(k) for k in listed.keys)

    # The audit log names who did it: the demo key, by id.
    lines = audit_lines(served.db_path)
    create = [line for line in lines if "CreateApiKey" in line and f"key_id={key_id}" in line]
    revoke = [line for line in lines if "RevokeApiKey" in line and f"key_id={key_id}" in line]
    assert len(create) == 1 and f"key:{demo_key_id}" in create[0].split(), lines
    assert len(revoke) >= 1 and all(f"key:{demo_key_id}" in line.split() for line in revoke), lines
    assert lines.index(revoke[-1]) < lines.index(create[0]), "audit is newest first"
    assert not any(secret in line or secret[16:] in line for line in lines)
    entries = c.admin.ListAuditLog(c.pb.admin_pb2.ListAuditLogRequest(), timeout=RPC_TIMEOUT_S).entries
    mine = [(e.action, e.actor) for e in entries if e.details.get("key_id") == key_id]
    assert ("CreateApiKey", f"key:{demo_key_id}") in mine and ("RevokeApiKey", f"key:{demo_key_id}") in mine, mine


def test_a_call_whose_request_comes_after_its_key_was_revoked_is_refused(client, served):
    """Credentials are checked at a call's headers; its request may come up
    to the request timeout later. A key revoked in between — an operator
    revoking a leaked admin key while the holder keeps calls open — ran the
    handler with the revoked key (it could mint a new key each time): the
    request is checked again when the keys changed since the headers."""
    c = client
    created = c.admin.CreateApiKey(c.pb.admin_pb2.CreateApiKeyRequest(name="leaked", scopes=["accounts:admin"]),
                                   timeout=RPC_TIMEOUT_S)
    path = "/billing.v1.Admin/CreateApiKey"
    body = c.pb.admin_pb2.CreateApiKeyRequest(name="minted", scopes=["accounts:admin"]).SerializeToString()
    with RawPeer(served.address) as peer:
        peer.start()
        headers = h2peer.grpc_request_headers(path, [("authorization", f"Bearer {created.secret}")])
        assert peer.send(h2peer.headers_frames(1, headers))  # admitted at its headers, no request yet
        peer.send(h2peer.ping())
        assert peer.read_until(lambda p: any(f.type == 6 and f.flags & 1 for f in p.frames), timeout=REACTION_TIMEOUT_S)
        c.admin.RevokeApiKey(c.pb.admin_pb2.RevokeApiKeyRequest(key_id=created.key.key_id), timeout=RPC_TIMEOUT_S)
        assert peer.send(h2peer.data_frame(1, h2peer.grpc_message(body)))
        assert peer.read_until(lambda p: p.stream_done(1), timeout=REACTION_TIMEOUT_S), peer.describe()
        answer = peer.response_headers(1)
        assert answer.get("grpc-status") == "16", answer  # UNAUTHENTICATED
    listed = c.admin.ListApiKeys(c.pb.admin_pb2.ListApiKeysRequest(include_revoked=True), timeout=RPC_TIMEOUT_S)
    assert "minted" not in [k.name for k in listed.keys]


def test_a_key_revoked_while_its_calls_run_is_refused_from_then_on(client, served):
    """Revocation races calls on another connection: once RevokeApiKey has
    answered, no later call with the key succeeds."""
    c = client
    created = c.admin.CreateApiKey(c.pb.admin_pb2.CreateApiKeyRequest(name="raced", scopes=["metering:read"]),
                                   timeout=RPC_TIMEOUT_S)
    stub = c.pb.metering_pb2_grpc.MeteringStub(served.authorized_channel(created.secret))
    futures = [stub.Quote.future(c.quote_request(), timeout=RPC_TIMEOUT_S) for _ in range(50)]
    c.admin.RevokeApiKey(c.pb.admin_pb2.RevokeApiKeyRequest(key_id=created.key.key_id), timeout=RPC_TIMEOUT_S)
    revoked_at = time.monotonic()
    for f in futures:
        f.exception()  # either way: started before the revocation answered
    for _ in range(20):
        with pytest.raises(grpc.RpcError) as refused:
            stub.Quote(c.quote_request(), timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert time.monotonic() - revoked_at < 30


def test_a_key_that_would_be_expired_when_made_or_a_forging_text_is_refused(client):
    """A past expiry (seconds read as milliseconds, a date gone by) is a
    mistake: refused. A grant reason with a line break or a terminal escape
    would forge lines in the audit log and `billing audit`: refused. A
    negative audit page size is refused, not read as the default."""
    c = client
    before = {k.key_id for k in c.admin.ListApiKeys(c.pb.admin_pb2.ListApiKeysRequest(include_revoked=True),
                                                    timeout=RPC_TIMEOUT_S).keys}
    with pytest.raises(grpc.RpcError) as refused:
        c.admin.CreateApiKey(c.pb.admin_pb2.CreateApiKeyRequest(
            name="dead-on-arrival", scopes=["metering:read"], expires_unix_seconds=1), timeout=RPC_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(c.pb, refused.value).metadata["field"] == "expires_unix_seconds"
    after = {k.key_id for k in c.admin.ListApiKeys(c.pb.admin_pb2.ListApiKeysRequest(include_revoked=True),
                                                   timeout=RPC_TIMEOUT_S).keys}
    assert after == before
    for reason in ("ok\n9999  2030-01-01T00:00:00Z  cli  RevokeApiKey  key_id=forged", "ok\x1b[2K", "ok\u202eevil", "ok\u0085"):
        with pytest.raises(grpc.RpcError) as refused:
            c.admin.GrantCredits(c.pb.admin_pb2.GrantCreditsRequest(account_id="demo", amount_micros=1, reason=reason),
                                 timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, reason
        assert error_info(c.pb, refused.value).metadata["field"] == "reason"
    with pytest.raises(grpc.RpcError) as refused:
        c.admin.ListAuditLog(c.pb.admin_pb2.ListAuditLogRequest(page_size=-1), timeout=RPC_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_key_stops_working_when_it_expires(client, served):
    """On the wall clock: keys and user tokens expire in real time even on a
    --test-clock server (its demo token would otherwise die with the first
    month AdvanceClock moves), so this waits for a real expiry."""
    c = client
    expires = int(time.time()) + 5  # time enough for a slow machine's first call
    created = c.admin.CreateApiKey(c.pb.admin_pb2.CreateApiKeyRequest(
        name="short-lived", scopes=["metering:read"], expires_unix_seconds=expires), timeout=RPC_TIMEOUT_S)
    assert created.key.expires_unix_seconds == expires
    stub = c.pb.metering_pb2_grpc.MeteringStub(served.authorized_channel(created.secret))
    stub.Quote(c.quote_request(), timeout=RPC_TIMEOUT_S)
    time.sleep(max(0.0, expires - time.time()) + 0.2)
    with pytest.raises(grpc.RpcError) as refused:
        stub.Quote(c.quote_request(), timeout=RPC_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value.details()
    info = error_info(c.pb, refused.value)
    assert info is not None and info.domain == DOMAIN, info


def test_ids_that_only_look_alike_are_refused_never_merged(client):
    """"café" composed (NFC) and decomposed (e + U+0301) compare equal in
    Swift but differ in bytes, hashes and SQLite: only the composed form is
    taken, so one account never answers to two ids, nor a debit to two keys."""
    c = client
    m, a = c.pb.metering_pb2, c.pb.accounts_pb2
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    c.create(composed, credits=1_000_000)
    for path, request, field in [
        ("/billing.v1.Accounts/CreateAccount", a.CreateAccountRequest(account_id=decomposed), "account_id"),
        ("/billing.v1.Accounts/GetAccount", a.GetAccountRequest(account_id=decomposed), "account_id"),
        ("/billing.v1.Metering/Debit", m.DebitRequest(
            account_id=composed, workspace_id="w1", agent_id="a1", run_id="r", idempotency_key="k\u0065\u0301",
            line_items=[c.pb.common_pb2.LineItem(tool_call=c.pb.common_pb2.ToolCallUsage(integration="slack", calls=1))]),
         "idempotency_key"),
    ]:
        code, info, details, _ = c.call(path, request, f"Bearer {c.s.service_key()}")
        assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{path}: {code.name} {details}"
        assert info.reason == "INVALID_FIELD" and info.metadata["field"] == field, info
    assert c.balance(composed) == 1_000_000  # nothing charged
    # A user of the composed account is not let into the decomposed spelling,
    # nor the other way round: a token naming the decomposed one is no valid
    # token at all (session 29: a token's account_id follows an id's rules).
    for own, asked, refused in ((composed, decomposed, (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)),
                                (decomposed, composed, (grpc.StatusCode.UNAUTHENTICATED,))):
        token = "Bearer " + mint_jwt(c.s.jwt_secret(), user_claims(account_id=own, role="owner"))
        code, info, details, _ = c.call(GET_USAGE, m.GetUsageRequest(account_id=asked), token)
        assert code in refused, f"{own!r} asking {asked!r}: {code.name}"


def test_a_huge_id_or_timeout_is_answered_with_a_bounded_message(client, served):
    """An error quoting what the client sent stays small: a 200,000-byte
    account id (before it is checked) and a 15,000-byte grpc-timeout are
    answered at once, not dropped as an oversized header block."""
    c = client
    token = "Bearer " + mint_jwt(c.s.jwt_secret(), user_claims(account_id="demo", role="member"))
    code, info, details, _ = c.call("/billing.v1.Accounts/GetAccount",
                                    c.pb.accounts_pb2.GetAccountRequest(account_id="x" * 200_000), token)
    assert code == grpc.StatusCode.NOT_FOUND and info.reason == "ACCOUNT_NOT_FOUND", code.name
    assert len(details) < 200, len(details)
    health = health_pb2.HealthCheckRequest(service="").SerializeToString()
    with RawPeer(served.address) as peer:
        peer.start()
        peer.send(h2peer.grpc_call(1, HEALTH_CHECK, health, extra_headers=[("grpc-timeout", "%" * 15_000)]))
        assert peer.read_until(lambda p: p.stream_done(1) or p.closed, REACTION_TIMEOUT_S), peer.describe()
        headers = peer.response_headers(1)
        assert headers.get("grpc-status") == "3", peer.describe()
        assert len(headers.get("grpc-message", "")) <= 3 * 1_024, len(headers.get("grpc-message", ""))
