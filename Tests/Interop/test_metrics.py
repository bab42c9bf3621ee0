"""The operator's view: /metrics on --metrics-listen counts exactly the calls made."""
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import grpc
import pytest


def with_metrics(server, *args):
    """A server with /metrics on a port of the kernel's choosing (read from
    its `metrics` log line, written before it is ready: a port picked here
    and then handed over could be taken in between); (server, metrics port)."""
    srv = server(args=("--metrics-listen", "127.0.0.1:0", *args))
    found = re.search(r"address=127\.0\.0\.1:(\d+) .*\bmetrics\b", srv.log())
    assert found, srv.log_tail()
    return srv, int(found.group(1))


# No proxy for loopback, whatever http_proxy says (urllib would follow it).
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scrape(port: int, timeout: float = 5) -> dict[str, float]:
    body = DIRECT.open(f"http://127.0.0.1:{port}/metrics", timeout=timeout).read().decode()
    samples = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def handled(samples, method, code):
    return samples.get(f'grpc_server_handled_total{{grpc_method="{method}",grpc_code="{code}"}}', 0.0)


# One loop: every Debit enters the ledger on its own loop. Three: calls on
# the other loops continue as tasks and a refusal is counted on either path:
# connections are handed to the loops in turn, so three connections opened
# one after another land on three loops (the 1- and 3-loop metering test
# checks that, and covers both paths for status codes and reasons).
@pytest.mark.parametrize("threads", [1, 3])
def test_counters_move_by_exactly_the_calls_made(server, pb, threads):
    srv, metrics_port = with_metrics(server, "--threads", str(threads))
    # Three connections (grpcio shares one between channels to the same
    # target unless each has its own subchannel pool).
    stubs = [pb.metering_pb2_grpc.MeteringStub(srv.authorized_channel(options=[("grpc.use_local_subchannel_pool", 1)]))
             for _ in range(3)]
    metering = stubs[0]
    m, c = pb.metering_pb2, pb.common_pb2
    items = [c.LineItem(llm=c.LlmUsage(model="gpt-4o", input_tokens=100))]

    before = scrape(metrics_port)
    for i in range(7):
        stubs[i % 3].Debit(m.DebitRequest(account_id="demo", workspace_id="w", agent_id="a", run_id="r",
                                          idempotency_key=f"metrics-{i}", line_items=items), timeout=10)
    for i in range(3):
        try:
            stubs[i].Debit(m.DebitRequest(account_id="nobody", workspace_id="w", agent_id="a", run_id="r",
                                          idempotency_key="x", line_items=items), timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
    metering.Quote(m.QuoteRequest(account_id="demo", line_items=items), timeout=10)
    after = scrape(metrics_port)

    debit = "/billing.v1.Metering/Debit"
    assert handled(after, debit, "OK") - handled(before, debit, "OK") == 7
    assert handled(after, debit, "NOT_FOUND") - handled(before, debit, "NOT_FOUND") == 3
    quote = "/billing.v1.Metering/Quote"
    assert handled(after, quote, "OK") - handled(before, quote, "OK") == 1
    refusals = 'billing_refusals_total{reason="ACCOUNT_NOT_FOUND"}'
    assert after.get(refusals, 0) - before.get(refusals, 0) == 3
    # Latency: one observation per call of the method.
    count = 'grpc_server_handling_seconds_count{grpc_method="/billing.v1.Metering/Debit"}'
    assert after[count] - before.get(count, 0) == 10
    # Buckets from 100 µs (session 27: the lowest was 5 ms, above every
    # metering call, so no quantile could be read), cumulative.
    buckets = sorted((float(re.search(r'le="([^"]+)"', name).group(1)), value) for name, value in after.items()
                     if name.startswith('grpc_server_handling_seconds_bucket{') and 'Metering/Debit"' in name)
    assert buckets[0][0] == 0.0001 and 0.001 in [le for le, _ in buckets], buckets
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
    # The journal grew by 7 accepted debits and 1 refusal: the same request
    # under the same key was refused once and then answered from that record.
    assert after["billing_journal_entries"] - before["billing_journal_entries"] == 8
    assert after["billing_journal_batch_entries_count"] > before.get("billing_journal_batch_entries_count", 0)
    assert after["billing_open_connections"] >= 1
    assert after["billing_recovery_seconds"] >= 0
    assert after["billing_checkpoint_age_seconds"] == -1  # no checkpoint written by this process yet
    # Every entry of this process is after its (absent) checkpoint; far from pacing.
    assert after["billing_checkpoint_lag_entries"] - before["billing_checkpoint_lag_entries"] == 8
    assert after["billing_journal_paced"] == 0
    assert after["billing_ledger_serving"] == 1
    assert after["billing_ledger_reloads_total"] == 0
    assert after["billing_checkpoint_failures_total"] == 0
    assert after["billing_accounts_failing_transitions"] == 0
    assert after["billing_wal_bytes"] > 0  # the commits above are in the WAL (checkpointed every 10,000 pages)


def test_a_reload_after_a_failed_commit_is_counted_once(server, pb):
    """billing_ledger_reloads_total is a counter: a commit failing (another
    process holds SQLite's write lock past the busy timeout) makes one
    reload, and every later scrape says 1 — not 1 more per scrape."""
    from test_metering import Billing, debit_decided_under_a_held_write_lock
    srv, metrics_port = with_metrics(server)
    assert scrape(metrics_port)["billing_ledger_reloads_total"] == 0
    _, _, holder, pending = debit_decided_under_a_held_write_lock(Billing(pb, srv))
    try:
        with pytest.raises(grpc.RpcError) as failed:
            pending.result()
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    deadline = time.monotonic() + 10
    while (samples := scrape(metrics_port))["billing_ledger_serving"] != 1 or samples["billing_ledger_reloads_total"] == 0:
        assert time.monotonic() < deadline, samples
        time.sleep(0.05)
    for _ in range(3):
        assert scrape(metrics_port)["billing_ledger_reloads_total"] == 1
    assert "# TYPE billing_ledger_reloads_total counter" in DIRECT.open(
        f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()


def test_a_call_its_client_cancels_is_counted_cancelled_once(server, pb):
    """A Debit whose commit waits (another process holds SQLite's write
    lock) is cancelled by its client: counted CANCELLED at once — it was
    not counted at all before session 28 —, and its late answer, once the
    commit goes through, is not counted again."""
    from test_metering import Billing, debit_decided_under_a_held_write_lock
    srv, metrics_port = with_metrics(server)
    b = Billing(pb, srv)
    method = "/billing.v1.Metering/Debit"
    _, _, holder, pending = debit_decided_under_a_held_write_lock(b)
    try:
        before = scrape(metrics_port)
        assert handled(before, method, "CANCELLED") == 0
        pending.cancel()
        deadline = time.monotonic() + 10
        while handled(samples := scrape(metrics_port), method, "CANCELLED") == 0:
            assert time.monotonic() < deadline, samples
            time.sleep(0.02)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # The commit goes through; the answer nobody waits for is dropped.
    deadline = time.monotonic() + 10
    while b.get_debit("acme", "k1").outcome != pb.metering_pb2.DEBIT_OUTCOME_ACCEPTED:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    after = scrape(metrics_port)
    assert handled(after, method, "CANCELLED") == 1
    assert handled(after, method, "OK") == handled(before, method, "OK")


def test_a_call_reset_in_the_same_write_as_its_request_is_counted_cancelled(server):
    """HEADERS, DATA and RST_STREAM in one write: the health check is
    answered while the stream is already gone — no answer reaches the
    client, so it counts CANCELLED, not OK (session 29: OK, 50 answers
    nobody got)."""
    import h2peer
    from grpc_health.v1 import health_pb2
    srv, metrics_port = with_metrics(server)
    method = "/grpc.health.v1.Health/Check"
    body = health_pb2.HealthCheckRequest(service="").SerializeToString()
    before = scrape(metrics_port)
    with h2peer.RawPeer(srv.address) as peer:
        peer.start()
        for i in range(50):
            stream = 1 + 2 * i
            assert peer.send(h2peer.grpc_call(stream, method, body) + h2peer.rst_stream(stream))
        # A last call, not reset, answered: every call before it was handled.
        last = 1 + 2 * 50
        peer.send(h2peer.grpc_call(last, method, body))
        assert peer.read_until(lambda p: p.stream_done(last), 5), peer.describe()
        answered = [i for i in range(50) if peer.response_headers(1 + 2 * i).get("grpc-status") is not None]
    deadline = time.monotonic() + 5
    while True:
        after = scrape(metrics_port)
        moved = {code: handled(after, method, code) - handled(before, method, code) for code in ("OK", "CANCELLED")}
        if moved["OK"] + moved["CANCELLED"] == 51 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert moved == {"OK": 1 + len(answered), "CANCELLED": 50 - len(answered)}, (moved, answered)


def test_a_call_refused_at_its_headers_and_reset_at_once_is_counted_cancelled(server):
    """No credentials, and RST_STREAM in the same write: the refusal cannot
    be sent, and no call is left to forget — counted CANCELLED here (a diff
    review, session 29: counted nowhere, so a flood of such streams never
    showed in the metrics)."""
    import h2peer
    srv, metrics_port = with_metrics(server)
    method = "/billing.v1.Metering/Debit"
    before = scrape(metrics_port)
    with h2peer.RawPeer(srv.address) as peer:
        peer.start()
        block = h2peer.encode_headers(h2peer.grpc_request_headers(method))
        for i in range(20):
            stream = 1 + 2 * i
            assert peer.send(h2peer.frame(h2peer.HEADERS, h2peer.END_HEADERS, stream, block) + h2peer.rst_stream(stream))
        last = 1 + 2 * 20
        peer.send(h2peer.grpc_call(last, method, b""))
        assert peer.read_until(lambda p: p.stream_done(last), 5), peer.describe()
        answered = sum(peer.response_headers(1 + 2 * i).get("grpc-status") is not None for i in range(20))
    deadline = time.monotonic() + 5
    while True:
        after = scrape(metrics_port)
        moved = {code: handled(after, method, code) - handled(before, method, code) for code in ("UNAUTHENTICATED", "CANCELLED")}
        if sum(moved.values()) == 21 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert moved == {"UNAUTHENTICATED": 1 + answered, "CANCELLED": 20 - answered}, (moved, answered)


def test_unknown_paths_do_not_grow_the_label_set(server, pb):
    srv, metrics_port = with_metrics(server)
    channel = srv.authorized_channel()
    for i in range(5):
        call = channel.unary_unary(f"/billing.v1.Metering/Nope{i}", request_serializer=None, response_deserializer=None)
        try:
            call(b"", timeout=5)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    samples = scrape(metrics_port)
    assert handled(samples, "unknown", "UNIMPLEMENTED") == 5
    assert not any("Nope" in name for name in samples)
    # Anything but GET /metrics is 404.
    try:
        DIRECT.open(f"http://127.0.0.1:{metrics_port}/other", timeout=5)
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as error:
        assert error.code == 404


def test_a_scraper_trickling_its_request_cannot_hold_the_endpoint(server):
    """One byte every 0.5 s (each read well within the per-read timeout):
    the endpoint gives that connection 5 s in all, then a scrape is answered."""
    _, metrics_port = with_metrics(server)
    stop, sending, cut_off = threading.Event(), threading.Event(), threading.Event()

    def trickle():
        with socket.create_connection(("127.0.0.1", metrics_port), timeout=30) as slow:
            for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                if stop.is_set():
                    return
                try:
                    slow.send(bytes([byte]))
                except OSError:
                    cut_off.set()  # closed by the endpoint: what the test wants
                    return
                sending.set()
                time.sleep(0.5)

    slow = threading.Thread(target=trickle, daemon=True)
    slow.start()
    assert sending.wait(10), "the trickler could not connect"
    start = time.monotonic()
    try:
        samples = scrape(metrics_port, timeout=15)
        # The endpoint closed the trickling connection (a send fails within a few bytes).
        assert cut_off.wait(10), "the trickling connection was never closed"
    finally:
        stop.set()
    assert time.monotonic() - start < 10, "the trickling connection held the endpoint past its 5 s"
    assert "billing_open_connections" in samples, sorted(samples)[:5]


def test_refusals_at_the_headers_are_counted_under_their_method(server, pb):
    """A call refused before its request is read (here: a compressed request,
    UNSUPPORTED_ENCODING) is counted under the method it named, not
    "unknown" (as too many calls and a malformed grpc-timeout were)."""
    srv, metrics_port = with_metrics(server)
    quote = pb.metering_pb2_grpc.MeteringStub(srv.authorized_channel()).Quote
    c = pb.common_pb2
    request = pb.metering_pb2.QuoteRequest(account_id="demo", line_items=[c.LineItem(llm=c.LlmUsage(model="gpt-4o", input_tokens=1))])
    before = scrape(metrics_port)
    with pytest.raises(grpc.RpcError) as refused:
        quote(request, timeout=10, compression=grpc.Compression.Gzip)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED, refused.value.details()
    after = scrape(metrics_port)
    method = "/billing.v1.Metering/Quote"
    assert handled(after, method, "UNIMPLEMENTED") - handled(before, method, "UNIMPLEMENTED") == 1
    assert handled(after, "unknown", "UNIMPLEMENTED") == handled(before, "unknown", "UNIMPLEMENTED")


def test_tls_failures_are_counted(server):
    """A peer whose TLS fails (here: an h2c preface sent to the TLS port)
    is logged at debug only, per connection; /metrics counts them by stage
    (session 27), so an expired certificate or a misconfigured client shows."""
    srv = server(tls=True, args=("--metrics-listen", "127.0.0.1:0"))
    found = re.search(r"address=127\.0\.0\.1:(\d+) .*\bmetrics\b", srv.log())
    assert found, srv.log_tail()
    port = int(found.group(1))
    name = 'billing_tls_failures_total{stage="handshake"}'
    before = scrape(port).get(name, 0.0)
    for _ in range(3):
        with socket.create_connection(srv.address, timeout=5) as sock:
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            sock.settimeout(5)
            while sock.recv(4096):  # until the server closes it
                pass
    assert scrape(port).get(name, 0.0) - before == 3
    srv.assert_serving()


def test_idle_connections_do_not_hold_up_a_scrape(server):
    """Connections to /metrics that send nothing are served alongside the
    scrape, not before it (session 27: served one after another, five idle
    connections delayed a scrape ten seconds, Prometheus's default timeout)."""
    srv, metrics_port = with_metrics(server)
    idle = [socket.create_connection(("127.0.0.1", metrics_port), timeout=10) for _ in range(8)]
    try:
        start = time.monotonic()
        samples = scrape(metrics_port, timeout=10)
        assert time.monotonic() - start < 1.5, f"the scrape waited {time.monotonic() - start:.1f} s behind idle connections"
        assert "billing_open_connections" in samples
    finally:
        for sock in idle:
            sock.close()


def test_checkpoint_age_is_wall_clock_time_under_a_test_clock(server, pb):
    """billing_checkpoint_age_seconds is how long ago, by the system's
    clock, the newest checkpoint was written — also on a --test-clock
    server moved weeks ahead (session 27: measured against the test clock's
    time it went to minus weeks, and an age alert could never fire)."""
    srv, metrics_port = with_metrics(server, "--test-clock", "--checkpoint-every", "2")
    channel = srv.authorized_channel()
    admin = pb.admin_pb2_grpc.AdminStub(channel)
    accounts = pb.accounts_pb2_grpc.AccountsStub(channel)
    written = srv.log_tail(100_000).count("checkpoint written")  # (one at start)
    admin.AdvanceClock(pb.admin_pb2.AdvanceClockRequest(seconds=60 * 86_400), timeout=10)
    for i in range(4):  # entries past the interval: a checkpoint is written
        accounts.CreateAccount(pb.accounts_pb2.CreateAccountRequest(account_id=f"age-{i}"), timeout=10)
    deadline = time.monotonic() + 10
    while srv.log_tail(100_000).count("checkpoint written") <= written:
        assert time.monotonic() < deadline, srv.log_tail()
        time.sleep(0.05)
    age = scrape(metrics_port)["billing_checkpoint_age_seconds"]
    assert 0 <= age < 30, age


def test_refusals_of_the_grpc_layer_are_counted_by_reason(server, pb):
    """billing_refusals_total counts every refusal a caller gets, by its
    ErrorInfo reason, whichever layer made it, once (session 27: only the
    handlers' were counted — a message too large or an unknown health
    service never showed)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    srv, metrics_port = with_metrics(server)
    channel = srv.authorized_channel(options=[("grpc.max_send_message_length", 8 << 20)])
    before = scrape(metrics_port)
    raw = channel.unary_unary("/billing.v1.Metering/Debit", request_serializer=lambda x: x, response_deserializer=lambda x: x)
    with pytest.raises(grpc.RpcError) as big:
        raw(b"\x0a" + b"\x80\x80\x80\x03" + b"x" * (6 << 20), timeout=10)
    assert big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, big.value
    with pytest.raises(grpc.RpcError) as unknown:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND, unknown.value
    metering = pb.metering_pb2_grpc.MeteringStub(channel)
    items = [pb.common_pb2.LineItem(tool_call=pb.common_pb2.ToolCallUsage(integration="slack", calls=1))]
    with pytest.raises(grpc.RpcError):
        metering.Quote(pb.metering_pb2.QuoteRequest(account_id="nobody", line_items=items), timeout=10)
    # A batch's refusals go out inside an OK answer: counted too, each.
    batch = metering.DebitBatch(pb.metering_pb2.DebitBatchRequest(debits=[
        pb.metering_pb2.DebitRequest(account_id="nobody", workspace_id="w", agent_id="a", run_id="r",
                                     idempotency_key=f"b{i}", line_items=items) for i in range(2)]), timeout=10)
    assert [r.WhichOneof("outcome") for r in batch.results] == ["refused", "refused"]
    after = scrape(metrics_port)
    def moved(reason):
        name = f'billing_refusals_total{{reason="{reason}"}}'
        return after.get(name, 0) - before.get(name, 0)
    assert (moved("MESSAGE_TOO_LARGE"), moved("SERVICE_NOT_FOUND"), moved("ACCOUNT_NOT_FOUND")) == (1, 1, 3), \
        {k: v for k, v in after.items() if k.startswith("billing_refusals_total")}
