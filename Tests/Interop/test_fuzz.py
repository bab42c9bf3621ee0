"""Seeded, bounded fuzzing of gRPC message framing and protobuf decoding
over a raw HTTP/2 stream (h2peer), with the demo key.

Valid framed requests of the Metering, Admin, Accounts and health methods
are mutated (bytes flipped, set, inserted, deleted; truncated; length prefix
extended or shrunk; random bodies; compressed flag and other flag values;
overlong varints, huge lengths, deep nesting, invalid UTF-8, bad wire types;
bodies split across DATA frames, two messages in one unary call) and sent
one stream at a time. Every stream must end, within a bound, in a proper
gRPC status (trailers with grpc-status) or a stream reset: never a hang, a
dropped connection or a dead server. Cases with a flipped key must be
UNAUTHENTICATED whatever their body (credentials are checked before the
request is decoded). Afterwards the server still serves and `billing
verify` is clean.

Seed: $BILLING_FUZZ_SEED (default: random, printed in every failure).
Bounds: $BILLING_FUZZ_SECONDS (default 12) and $BILLING_FUZZ_CASES (default 10000).
A failing case is reproduced with the same seed; cases that once failed
belong in EDGE_CASES below, as regression tests.
"""

import os
import random
import struct
import time

import pytest
from grpc_health.v1 import health_pb2

import h2peer
from conftest import RPC_TIMEOUT_S
from h2peer import RawPeer

SEED = int(os.environ.get("BILLING_FUZZ_SEED", random.SystemRandom().randrange(1 << 32)))
BUDGET_S = float(os.environ.get("BILLING_FUZZ_SECONDS", "12"))
MAX_CASES = int(os.environ.get("BILLING_FUZZ_CASES", "10000"))
STREAM_TIMEOUT_S = 5.0
STREAMS_PER_CONNECTION = 200

# gRPC status codes (google.rpc.Code).
OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, \
    RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, \
    DATA_LOSS, UNAUTHENTICATED = range(17)
# What a mutated request in valid framing may get: a business answer if it
# still decodes, else a decoding refusal (INVALID_ARGUMENT). Never UNKNOWN
# (an unhandled error), never INTERNAL (the service's own fault; framing
# errors, which are INTERNAL by the gRPC spec, are cases of their own with
# their expected codes), never PERMISSION_DENIED (the demo key has every
# scope), never UNAVAILABLE or DATA_LOSS (the journal is fine).
ACCEPTABLE = {OK, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, RESOURCE_EXHAUSTED, FAILED_PRECONDITION,
              OUT_OF_RANGE, UNIMPLEMENTED, UNAUTHENTICATED}
# HTTP/2 error codes a stream in valid framing may be reset with: refused
# (too many streams) or the rate limit of resets the peer provoked.
REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x7, 0xB

HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def corpus(pb):
    """(path, valid serialized request) pairs."""
    m, c, a, ad = pb.metering_pb2, pb.common_pb2, pb.accounts_pb2, pb.admin_pb2
    items = [c.LineItem(llm=c.LlmUsage(model="gpt-4o", input_tokens=1234, output_tokens=567)),
             c.LineItem(tool_call=c.ToolCallUsage(integration="slack", calls=3)),
             c.LineItem(storage=c.StorageUsage(kind=c.STORAGE_KIND_TRACES, bytes=1 << 20))]

    def debit(key, account="demo", run="fz-run"):
        return m.DebitRequest(account_id=account, workspace_id="w1", agent_id="a1", run_id=run,
                              idempotency_key=key, line_items=items)

    messages = [
        ("/billing.v1.Metering/Debit", debit("fz-1")),
        ("/billing.v1.Metering/Debit", debit("fz-2", run="fz-run-2")),
        ("/billing.v1.Metering/Quote", m.QuoteRequest(account_id="demo", workspace_id="w1", agent_id="a1",
                                                      run_id="fz-q", line_items=items)),
        ("/billing.v1.Metering/DebitBatch", m.DebitBatchRequest(debits=[debit("fz-b1"), debit("fz-b2", "nobody")])),
        ("/billing.v1.Metering/GetDebit", m.GetDebitRequest(account_id="demo", idempotency_key="fz-1")),
        ("/billing.v1.Metering/GetExecutionCost", m.GetExecutionCostRequest(account_id="demo", run_id="fz-run")),
        ("/billing.v1.Metering/GetUsage", m.GetUsageRequest(account_id="demo", from_unix_seconds=1, to_unix_seconds=0,
                                                            group_by=[m.USAGE_GROUP_BY_DAY, m.USAGE_GROUP_BY_AGENT])),
        ("/billing.v1.Admin/GrantCredits", ad.GrantCreditsRequest(account_id="demo", amount_micros=1000,
                                                                  reason="fuzz", idempotency_key="fz-g")),
        ("/billing.v1.Admin/CreateApiKey", ad.CreateApiKeyRequest(name="fuzz", scopes=["metering:read"])),
        ("/billing.v1.Admin/ListAuditLog", ad.ListAuditLogRequest(account_id="demo", page_size=5)),
        ("/billing.v1.Admin/RevokeApiKey", ad.RevokeApiKeyRequest(key_id="000000000000")),
        ("/billing.v1.Accounts/CreateAccount", a.CreateAccountRequest(account_id="fz-acct", display_name="Fuzz",
                                                                      initial_plan=a.PLAN_PRO)),
        (HEALTH_CHECK, health_pb2.HealthCheckRequest(service="billing.v1.Metering")),
    ]
    return [(path, message.SerializeToString()) for path, message in messages]


# --------------------------------------------------------------------------
# Protobuf-level pieces


def varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def nested_groups(depth: int, field: int = 15) -> bytes:
    return tag(field, 3) * depth + tag(field, 4) * depth


def nested_messages(depth: int, field: int = 6) -> bytes:
    """LEN-delimited field `field` nested `depth` deep (DebitRequest.line_items is 6)."""
    inner = b""
    for _ in range(depth):
        inner = tag(field, 2) + varint(len(inner)) + inner
    return inner


# --------------------------------------------------------------------------
# Mutations: each returns (description, frames of the request after HEADERS,
# extra headers, expected codes or None for ACCEPTABLE, flipped key?)


class Case:
    def __init__(self, what, body=b"", *, frame=None, data_frames=None, extra=(), expect=None, bad_key=False):
        self.what = what
        self.body = body                  # protobuf bytes (before framing)
        self.frame = frame                # the framed message, when not the default framing of body
        self.data_frames = data_frames    # the DATA payloads to send, when not one frame of `frame`
        self.extra = list(extra)          # extra request headers
        self.expect = expect              # set of acceptable codes (None: ACCEPTABLE)
        self.bad_key = bad_key

    def payloads(self) -> list[bytes]:
        if self.data_frames is not None:
            return self.data_frames
        framed = self.frame if self.frame is not None else h2peer.grpc_message(self.body)
        return [framed[i:i + h2peer.MAX_FRAME_SIZE] for i in range(0, len(framed), h2peer.MAX_FRAME_SIZE)] or [b""]


def mutate_body(rng: random.Random, body: bytes, others: list[bytes]) -> tuple[str, bytes]:
    b = bytearray(body)
    choice = rng.randrange(16)
    if choice == 0 and b:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return "bits flipped", bytes(b)
    if choice == 1 and b:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.choice([0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        return "bytes set", bytes(b)
    if choice == 2:
        i = rng.randrange(len(b) + 1)
        return "bytes inserted", bytes(b[:i]) + rng.randbytes(rng.randint(1, 16)) + bytes(b[i:])
    if choice == 3 and b:
        i = rng.randrange(len(b))
        return "bytes deleted", bytes(b[:i]) + bytes(b[i + rng.randint(1, 16):])
    if choice == 4 and b:
        return "truncated", bytes(b[:rng.randrange(len(b))])
    if choice == 5:
        return "random body", rng.randbytes(rng.choice([1, 2, 5, 10, 50, 200, 1000]))
    if choice == 6:
        other = rng.choice(others)
        return "spliced", bytes(b[:rng.randrange(len(b) + 1)]) + other[rng.randrange(len(other) + 1):]
    if choice == 7:
        return "overlong varint", bytes(b) + tag(rng.randint(1, 20), 0) + b"\xff" * rng.randint(10, 40)
    if choice == 8:
        length = rng.choice([1 << 31, (1 << 32) - 1, (1 << 63) - 1, (1 << 64) - 1, len(b) + 1, 4 << 20])
        return "huge length", bytes(b) + tag(rng.randint(1, 20), 2) + varint(length) + b"x" * rng.randint(0, 8)
    if choice == 9:
        return "nested groups", bytes(b) + nested_groups(rng.choice([10, 100, 1000, 10000, 50000]),
                                                         rng.randint(1, 3000))
    if choice == 10:
        return "nested messages", bytes(b) + nested_messages(rng.choice([50, 101, 1000, 5000]), rng.randint(1, 10))
    if choice == 11:
        bad = rng.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\x80b", b"\xe2\x82"])
        return "invalid utf-8", bytes(b) + tag(rng.choice([1, 2, 3, 4, 5]), 2) + varint(len(bad)) + bad
    if choice == 12:
        return "bad wire type", bytes(b) + varint((rng.randint(0, 20) << 3) | rng.choice([6, 7])) + b"\x01\x02"
    if choice == 13:
        return "field number 0 / huge", bytes(b) + rng.choice([b"\x00\x01", b"\x02\x00", tag((1 << 29) - 1, 0) + b"\x01",
                                                                varint(1 << 35) + b"\x01"])
    if choice == 14:
        return "end group without start", bytes(b) + tag(rng.randint(1, 20), 4)
    return "doubled", bytes(b) + bytes(b)


def make_case(rng: random.Random, bodies: list[tuple[str, bytes]]) -> tuple[str, Case]:
    path, body = rng.choice(bodies)
    others = [b for _, b in bodies]
    kind = rng.randrange(100)
    if kind < 55:
        what, mutated = mutate_body(rng, body, others)
        return path, Case(what, mutated)
    if kind < 60:
        what, mutated = mutate_body(rng, body, others)
        return path, Case(f"flipped key, {what}", mutated, bad_key=True,
                          expect={UNAUTHENTICATED} if path != HEALTH_CHECK else None)
    framed = h2peer.grpc_message(body)
    if kind < 64:
        return path, Case("compressed flag, no grpc-encoding", body, frame=b"\x01" + framed[1:], expect={INTERNAL})
    if kind < 67:
        flags = rng.randint(2, 255)
        return path, Case(f"flags 0x{flags:x}", body, frame=bytes([flags]) + framed[1:], expect={INTERNAL})
    if kind < 71:
        extra = rng.randint(1, 1000)
        return path, Case(f"length prefix +{extra}", body,
                          frame=b"\x00" + struct.pack(">I", len(body) + extra) + body, expect={INTERNAL})
    if kind < 75 and body:
        short = rng.randint(1, len(body))
        # The rest of the body is the start of a second message (or a truncated one).
        return path, Case(f"length prefix -{short}", body,
                          frame=b"\x00" + struct.pack(">I", len(body) - short) + body,
                          expect={INTERNAL, INVALID_ARGUMENT, RESOURCE_EXHAUSTED} | ACCEPTABLE)
    if kind < 78:
        length = rng.choice([(4 << 20) + 1, 1 << 31, (1 << 32) - 1])
        return path, Case(f"length prefix {length}", body, frame=b"\x00" + struct.pack(">I", length) + body,
                          expect={RESOURCE_EXHAUSTED})
    if kind < 81:
        cut = rng.randint(0, 4)
        return path, Case(f"prefix cut to {cut} bytes", body, frame=framed[:cut], expect={INTERNAL})
    if kind < 84:
        return path, Case("two messages", body, frame=framed + framed, expect={INTERNAL})
    if kind < 88:
        pieces, rest = [], framed
        while rest:
            n = rng.randint(1, max(1, len(rest) // 2))
            pieces.append(rest[:n])
            rest = rest[n:]
        return path, Case(f"split into {len(pieces)} DATA frames", body, data_frames=pieces)
    if kind < 91:
        return path, Case("no message, empty DATA", body, data_frames=[b""], expect={INTERNAL})
    if kind < 94:
        encoding = rng.choice(["gzip", "deflate", "snappy", "identity, gzip"])
        return path, Case(f"grpc-encoding {encoding}, compressed flag", body, frame=b"\x01" + framed[1:],
                          extra=[("grpc-encoding", encoding)], expect={UNIMPLEMENTED})
    if kind < 97:
        return path, Case("empty message", b"")
    what, mutated = mutate_body(rng, body, others)
    flags = rng.randrange(256)
    # Flags other than 0 are a framing error (INTERNAL, compressed without an
    # encoding or an undefined bit); 0 is a plain message.
    return path, Case(f"random flags 0x{flags:02x} {what}", mutated,
                      frame=bytes([flags]) + struct.pack(">I", len(mutated)) + mutated,
                      expect={INTERNAL} if flags else None)


def flip_key(rng: random.Random, key: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    while True:
        i = rng.randrange(len(key))
        if i < 16 and rng.random() < 0.7:
            continue  # mostly the secret part
        replacement = rng.choice(alphabet if i >= 16 else "0123456789abcdef")
        flipped = key[:i] + replacement + key[i + 1:]
        if flipped != key:
            return flipped


# --------------------------------------------------------------------------
# Driving one server


class Driver:
    def __init__(self, s, key):
        self.s = s
        self.key = key
        self.peer = None
        self.stream_id = 1
        self.streams_on_peer = 0

    def connect(self):
        if self.peer is not None:
            self.peer.close()
        self.peer = RawPeer(self.s.address, timeout=STREAM_TIMEOUT_S)
        # Windows large enough that no response waits for a WINDOW_UPDATE
        # (this peer sends none): a stalled stream is then the server's doing.
        assert self.peer.send(h2peer.PREFACE + h2peer.settings((0x4, 1 << 30))
                              + h2peer.window_update(0, (1 << 31) - 1 - 65535))
        # Wait for the server's SETTINGS (acknowledged as they are read): its
        # 1 MiB stream window applies from then on, and bodies may be large.
        assert self.peer.read_until(lambda p: any(f.type == h2peer.SETTINGS and not f.flags & h2peer.ACK
                                                  for f in p.frames), STREAM_TIMEOUT_S), self.peer.describe()
        self.peer.frames.clear()
        self.stream_id = 1
        self.streams_on_peer = 0

    def send(self, path, case: Case, key: str):
        """The outcome: ("status", code, headers) or ("reset", code) or ("closed"/"hang", description)."""
        if self.peer is None or self.peer.closed or self.streams_on_peer >= STREAMS_PER_CONNECTION:
            self.connect()
        sid = self.stream_id
        self.stream_id += 2
        self.streams_on_peer += 1
        headers = h2peer.grpc_request_headers(path, extra=[("authorization", f"Bearer {key}"), *case.extra])
        payloads = case.payloads()
        out = h2peer.headers_frames(sid, headers)
        for i, payload in enumerate(payloads):
            out += h2peer.data_frame(sid, payload, end_stream=i == len(payloads) - 1)
        self.peer.send(out)
        self.peer.read_until(lambda p: p.stream_done(sid) or p.closed, STREAM_TIMEOUT_S)
        fields = self.peer.response_headers(sid)
        # Drop what we have read of this stream, so that frames do not pile up.
        frames = self.peer.stream_frames(sid)
        self.peer.frames = [f for f in self.peer.frames if f.stream_id != sid]
        if "grpc-status" in fields:
            return ("status", int(fields["grpc-status"]), fields, frames)
        resets = [f for f in frames if f.type == h2peer.RST_STREAM]
        if resets:
            return ("reset", resets[0].error_code, fields, frames)
        if self.peer.closed:
            return ("closed", None, fields, f"connection closed: {self.peer.describe()}")
        return ("hang", None, fields, f"no end of stream {sid} in {STREAM_TIMEOUT_S} s: {self.peer.describe()}")

    def close(self):
        if self.peer is not None:
            self.peer.close()


def check(outcome, case: Case, path: str, index: int, s) -> str | None:
    """Why the outcome is wrong, or None."""
    kind, code, fields, frames = outcome
    if kind in ("closed", "hang"):
        alive = "alive" if s.proc.poll() is None else f"DEAD (exit {s.proc.returncode})"
        return f"{kind}: {frames}; server {alive}"
    if kind == "reset":
        # A stream reset is a proper end of a broken frame; a message in
        # valid framing is answered, unless the stream was refused.
        framed_validly = case.frame is None and case.data_frames is None
        if framed_validly and code not in (REFUSED_STREAM, ENHANCE_YOUR_CALM):
            return f"stream reset with HTTP/2 error {code} for a message in valid framing"
        return None
    if fields.get(":status") != "200":
        return f"HTTP status {fields.get(':status')}: {fields}"
    expect = case.expect if case.expect is not None else ACCEPTABLE
    if case.bad_key and path != HEALTH_CHECK and case.frame is None and case.data_frames is None:
        expect = {UNAUTHENTICATED}
    if code not in expect:
        return f"grpc-status {code} ({fields.get('grpc-message', '')!r}), expected one of {sorted(expect)}"
    if code == OK:
        body = b"".join(f.payload for f in frames if f.type == h2peer.DATA)
        if len(body) < 5 or body[0] != 0 or struct.unpack(">I", body[1:5])[0] != len(body) - 5:
            return f"OK with a malformed response message: {body[:40]!r}"
    return None


def describe(index, path, case: Case) -> str:
    frame = case.frame if case.frame is not None else h2peer.grpc_message(case.body)
    return (f"seed={SEED} case #{index}: {path} [{case.what}] extra={case.extra} "
            f"message ({len(frame)} bytes) {frame[:120].hex()}{'…' if len(frame) > 120 else ''}")


def run_cases(s, key, cases, stats=None):
    """Sends every (path, case); returns the failures (description, why).
    `stats` (a dict) counts the outcomes by kind and code."""
    driver = Driver(s, key)
    failures = []
    stats = {} if stats is None else stats
    flips = random.Random(SEED ^ 0x5EED)
    try:
        for index, (path, case) in enumerate(cases):
            use_key = flip_key(flips, key) if case.bad_key else key
            outcome = driver.send(path, case, use_key)
            why = check(outcome, case, path, index, s)
            label = f"{outcome[0]} {outcome[1]}"
            stats[label] = stats.get(label, 0) + 1
            if why is not None:
                failures.append(f"{describe(index, path, case)}\n    -> {why}")
                if s.proc.poll() is not None or len(failures) >= 10:
                    break
                if outcome[0] in ("closed", "hang"):
                    driver.connect()  # go on with the next case on a fresh connection
    finally:
        driver.close()
    return failures


@pytest.fixture
def fuzzed(server):
    return server(drain_seconds=2)


def test_fuzz_framing_and_decoding(pb, fuzzed, verify):
    s = fuzzed
    print(f"fuzz seed {SEED} (BILLING_FUZZ_SEED={SEED} to repeat), budget {BUDGET_S} s / {MAX_CASES} cases")
    rng = random.Random(SEED)
    bodies = corpus(pb)
    deadline = time.monotonic() + BUDGET_S
    failures, done = [], 0

    def cases():
        nonlocal done
        while done < MAX_CASES and time.monotonic() < deadline:
            done += 1
            yield make_case(rng, bodies)

    stats = {}
    failures = run_cases(s, s.service_key(), cases(), stats)
    print(f"fuzz outcomes: {dict(sorted(stats.items()))}")
    assert not failures, f"seed={SEED}: {len(failures)} bad outcome(s) after {done} cases:\n" + "\n".join(failures)
    assert done >= 200, f"seed={SEED}: only {done} cases in {BUDGET_S} s"
    assert s.proc.poll() is None, f"seed={SEED}: server died"
    s.assert_serving()
    # Still a working billing server: a valid debit, and the books reconcile.
    m, c = pb.metering_pb2, pb.common_pb2
    stub = pb.metering_pb2_grpc.MeteringStub(s.authorized_channel())
    stub.Debit(m.DebitRequest(account_id="demo", workspace_id="w1", agent_id="a1", run_id="after-fuzz",
                              idempotency_key=f"after-fuzz-{SEED}", line_items=[c.LineItem(
                                  tool_call=c.ToolCallUsage(integration="slack", calls=1))]), timeout=RPC_TIMEOUT_S)
    verify(s.db_path)
    print(f"fuzz seed {SEED}: {done} cases, no bad outcome")


# --------------------------------------------------------------------------
# Edge cases, each with its exact expected outcome (and regression tests for
# anything the fuzzer finds)


def keyed_debit(pb, key):
    """The corpus's Debit, serialized, under its own idempotency key (a case
    that shares one would depend on what ran before it)."""
    request = pb.metering_pb2.DebitRequest.FromString(dict(corpus(pb))["/billing.v1.Metering/Debit"])
    request.idempotency_key = key
    return request.SerializeToString()


def edge_cases(pb):
    debit = dict(corpus(pb))["/billing.v1.Metering/Debit"]
    framed = h2peer.grpc_message(debit)
    D = "/billing.v1.Metering/Debit"
    return {
        "compressed_flag": (D, Case("", debit, frame=b"\x01" + framed[1:]), {INTERNAL}),
        "flags_0x80": (D, Case("", debit, frame=b"\x80" + framed[1:]), {INTERNAL}),
        "length_over_limit": (D, Case("", debit, frame=b"\x00" + struct.pack(">I", (4 << 20) + 1)), {RESOURCE_EXHAUSTED}),
        "length_4GiB": (D, Case("", debit, frame=b"\x00\xff\xff\xff\xff" + debit), {RESOURCE_EXHAUSTED}),
        "length_beyond_data": (D, Case("", debit, frame=b"\x00" + struct.pack(">I", len(debit) + 1) + debit), {INTERNAL}),
        "prefix_only": (D, Case("", debit, frame=framed[:5]), {INTERNAL}),
        "half_prefix": (D, Case("", debit, frame=framed[:2]), {INTERNAL}),
        "no_message": (D, Case("", debit, data_frames=[b""]), {INTERNAL}),
        "two_messages": (D, Case("", debit, frame=framed + framed), {INTERNAL}),
        "byte_by_byte": (D, Case("", debit, data_frames=[bytes([x]) for x in framed]), {OK}),
        "gzip_encoding": (D, Case("", debit, frame=b"\x01" + framed[1:], extra=[("grpc-encoding", "gzip")]),
                          {UNIMPLEMENTED}),
        "empty_debit": (D, Case("", b""), {INVALID_ARGUMENT}),
        "garbage": (D, Case("", b"\xff" * 64), {INVALID_ARGUMENT}),
        "overlong_varint": (D, Case("", debit + b"\x08" + b"\xff" * 11), {INVALID_ARGUMENT}),
        "length_2_63": (D, Case("", debit + b"\x0a" + varint((1 << 63) - 1)), {INVALID_ARGUMENT}),
        "groups_100000_deep": (D, Case("", keyed_debit(pb, "fz-groups") + nested_groups(100_000)), {INVALID_ARGUMENT, OK}),
        "messages_10000_deep": (D, Case("", debit + nested_messages(10_000)), {INVALID_ARGUMENT}),
        "invalid_utf8_account": (D, Case("", b"\x0a\x02\xc3\x28" + debit[len(b"\x0a\x04demo"):]), {INVALID_ARGUMENT}),
        "wire_type_7": (D, Case("", debit + b"\x0f"), {INVALID_ARGUMENT}),
        "unknown_field_accepted": (D, Case("", keyed_debit(pb, "fz-unknown") + tag(1000, 0) + varint(1)), {OK}),
        "health_nested_groups": (HEALTH_CHECK, Case("", nested_groups(100_000)), {INVALID_ARGUMENT, OK}),
        "health_garbage": (HEALTH_CHECK, Case("", b"\x0a\xff\xff\xff\xff\x0f"), {INVALID_ARGUMENT}),
        "bad_key_garbage_body": (D, Case("", b"\xff" * 64, bad_key=True), {UNAUTHENTICATED}),
    }


EDGE_NAMES = ["compressed_flag", "flags_0x80", "length_over_limit", "length_4GiB", "length_beyond_data",
              "prefix_only", "half_prefix", "no_message", "two_messages", "byte_by_byte", "gzip_encoding",
              "empty_debit", "garbage", "overlong_varint", "length_2_63", "groups_100000_deep",
              "messages_10000_deep", "invalid_utf8_account", "wire_type_7", "unknown_field_accepted",
              "health_nested_groups", "health_garbage", "bad_key_garbage_body"]


@pytest.fixture(scope="module")
def edge_server(module_server):
    return module_server()


def test_an_unknown_field_is_kept_out_of_a_debits_identity(pb, edge_server):
    """A retry whose body carries a field this build does not know (a newer
    client's) is the same request: answered with the original, not
    IDEMPOTENCY_KEY_REUSED."""
    plain = keyed_debit(pb, "fz-unknown-identity")
    call = edge_server.authorized_channel().unary_unary("/billing.v1.Metering/Debit", request_serializer=lambda x: x,
                                                       response_deserializer=lambda x: x)
    first = call(plain, timeout=RPC_TIMEOUT_S)
    assert call(plain + tag(1000, 0) + varint(1), timeout=RPC_TIMEOUT_S) == first


@pytest.mark.parametrize("name", EDGE_NAMES)
def test_framing_and_decoding_edge_case(pb, edge_server, name):
    s = edge_server
    path, case, expect = edge_cases(pb)[name]
    case.expect = expect
    driver = Driver(s, s.service_key())
    try:
        key = flip_key(random.Random(1), s.service_key()) if case.bad_key else s.service_key()
        outcome = driver.send(path, case, key)
    finally:
        driver.close()
    kind, code, fields, frames = outcome
    assert kind == "status", f"{name}: {kind} {code} {frames}"
    assert code in expect, f"{name}: grpc-status {code} {fields.get('grpc-message')!r}, expected {sorted(expect)}"
    # DESIGN.md "Errors": every refusal carries a machine-readable reason.
    if code != OK:
        assert "grpc-status-details-bin" in fields, f"{name}: grpc-status {code} without an ErrorInfo"
    assert s.proc.poll() is None
    s.assert_serving()
