"""The reference gRPC client (Python grpcio, stubs generated from schema/)
against the running server over loopback, h2c and TLS.

A few checks that grpcio cannot make (a deadline the server itself enforces,
HTTP 415, the compressed flag) use the raw HTTP/2 peer in h2peer.py.
"""

import os
import signal
import subprocess
import time
import grpc
import pytest
from grpc_health.v1 import health_pb2

import h2peer
from conftest import error_info

TRANSPORTS = ["h2c", "tls"]


def wait(futures, timeout):
    """Waits for grpcio futures (not concurrent.futures ones) for at most
    `timeout` seconds in all; returns (done, not_done)."""
    deadline = time.monotonic() + timeout
    for f in futures:
        try:
            f.exception(timeout=max(deadline - time.monotonic(), 0.001))
        except grpc.FutureTimeoutError:
            break
    done = [f for f in futures if f.done()]
    return done, [f for f in futures if not f.done()]


def identity(b):
    return b


def raw_unary(channel, path):
    """A generic unary call sending and receiving raw message bytes."""
    return channel.unary_unary(path, request_serializer=identity, response_deserializer=identity)


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    return request.param


@pytest.fixture
def served(server, transport):
    """A server of the parametrised transport."""
    return server(tls=transport == "tls")


@pytest.fixture
def echo(pb, served):
    """Echo(payload, delay_ms=0, timeout=10) on a new channel to `served`."""
    stub = pb.testing_pb2_grpc.TestingStub(served.channel())

    def call(payload: bytes, delay_ms: int = 0, timeout: float = 10.0):
        request = pb.testing_pb2.EchoRequest(payload=payload, delay_ms=delay_ms)
        return stub.Echo(request, timeout=timeout).payload

    call.stub = stub
    return call


# --------------------------------------------------------------------------
# Calls


def test_echo(echo):
    payload = bytes(range(256)) * 4
    assert echo(payload) == payload
    assert echo(b"") == b""


def test_health_check(pb, served):
    ch = served.channel()
    assert served.health(ch) == health_pb2.HealthCheckResponse.SERVING
    assert served.health(ch, service="billing.v1.Metering") == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as info:
        served.health(ch, service="no.such.Service")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(pb, info.value).reason == "SERVICE_NOT_FOUND"


def test_health_list_names_every_service(served):
    from grpc_health.v1 import health_pb2_grpc
    listed = health_pb2_grpc.HealthStub(served.channel()).List(health_pb2.HealthListRequest(), timeout=10)
    assert {"", "billing.v1.Metering", "billing.v1.Accounts", "billing.v1.Payments", "billing.v1.Admin"} <= set(listed.statuses)
    assert {s.status for s in listed.statuses.values()} == {health_pb2.HealthCheckResponse.SERVING}


def test_health_watch_is_unimplemented(served):
    watch = served.channel().unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString)
    with pytest.raises(grpc.RpcError) as info:
        list(watch(health_pb2.HealthCheckRequest(service=""), timeout=10))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("path", ["/billing.v1.Metering/NoSuchMethod", "/no.such.Service/Method"])
def test_unknown_method_is_unimplemented(served, path):
    with pytest.raises(grpc.RpcError) as info:
        raw_unary(served.channel(), path)(b"", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_deadline_exceeded(echo):
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        echo(b"slow", delay_ms=60_000, timeout=0.2)
    elapsed = time.monotonic() - start
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # (Margins orders of magnitude wide, for a loaded machine: the call would take 60 s.)
    assert elapsed < 30, f"the call took {elapsed:.2f} s"
    # The channel is still good.
    assert echo(b"after") == b"after"


def test_server_enforces_grpc_timeout(pb, server):
    """The server answers DEADLINE_EXCEEDED itself when grpc-timeout passes
    (grpcio's client would give up on its own; here no client timer runs)."""
    s = server()
    request = pb.testing_pb2.EchoRequest(payload=b"x", delay_ms=60_000).SerializeToString()
    with h2peer.RawPeer(s.address) as peer:
        peer.start()
        start = time.monotonic()
        peer.send(h2peer.grpc_call(1, "/billing.v1.Testing/Echo", request, extra_headers=[("grpc-timeout", "200m")]))
        assert peer.read_until(lambda p: p.stream_done(1), timeout=30), peer.describe()
        elapsed = time.monotonic() - start
    fields = peer.response_headers(1)
    assert fields.get("grpc-status") == str(grpc.StatusCode.DEADLINE_EXCEEDED.value[0]), peer.describe()
    assert 0.15 < elapsed < 30, f"DEADLINE_EXCEEDED after {elapsed:.2f} s"  # (the handler would answer at 60 s)


def test_a_peer_that_half_closes_after_its_requests_still_gets_every_answer(pb, server):
    """A client may shut its side of the TCP connection once it has sent
    everything (a FIN after the requests): the calls it made are answered,
    then the server closes. (They were dropped: the connection closed at the
    FIN, a handler's answer — a debit's acknowledgement — never sent.) A
    call whose request had not ended is reset: it can never complete."""
    s = server()
    import socket
    slow = pb.testing_pb2.EchoRequest(payload=b"slow", delay_ms=300).SerializeToString()
    fast = pb.testing_pb2.EchoRequest(payload=b"fast").SerializeToString()
    with h2peer.RawPeer(s.address) as peer:
        peer.start()
        headers = h2peer.headers_frames(5, h2peer.grpc_request_headers("/billing.v1.Testing/Echo"))
        assert peer.send(h2peer.grpc_call(1, "/billing.v1.Testing/Echo", slow)
                         + h2peer.grpc_call(3, "/billing.v1.Testing/Echo", fast) + headers)
        # The server has read them (its SETTINGS and the fast answer came back) before the FIN.
        assert peer.read_until(lambda p: p.stream_done(3), timeout=5), peer.describe()
        peer.sock.shutdown(socket.SHUT_WR)
        assert peer.wait_closed(timeout=10), peer.describe()
    for stream, payload in [(1, b"slow"), (3, b"fast")]:
        assert peer.response_headers(stream).get("grpc-status") == "0", peer.describe()
        body = b"".join(f.payload for f in peer.stream_frames(stream) if f.type == h2peer.DATA)
        assert pb.testing_pb2.EchoResponse.FromString(body[5:]).payload == payload
    assert any(f.type == h2peer.RST_STREAM for f in peer.stream_frames(5)), peer.describe()
    s.assert_serving()


@pytest.mark.parametrize("tail", ["nothing", "an unfinished header block"])
def test_a_fin_right_behind_the_requests_is_seen_and_the_connection_ends(pb, server, tail):
    """The FIN in the same segment as the last request (a short read that
    is also the end): the answers come, then the server closes at once —
    not at the idle timeout (300 s), which is where an unseen FIN left it.
    A header block the peer never finished does not hold it open either."""
    import socket
    s = server()
    fast = pb.testing_pb2.EchoRequest(payload=b"fast").SerializeToString()
    unfinished = b""
    if tail != "nothing":  # HEADERS without END_HEADERS, and no CONTINUATION ever
        block = h2peer.encode_headers(h2peer.grpc_request_headers("/billing.v1.Testing/Echo"))
        unfinished = h2peer.frame(h2peer.HEADERS, 0, 5, block)
    with h2peer.RawPeer(s.address) as peer:
        assert peer.send(h2peer.PREFACE + h2peer.settings() + h2peer.grpc_call(1, "/billing.v1.Testing/Echo", fast)
                         + h2peer.grpc_call(3, "/billing.v1.Testing/Echo", fast) + unfinished)
        peer.sock.shutdown(socket.SHUT_WR)
        assert peer.wait_closed(timeout=10), peer.describe()
    for stream in (1, 3):
        assert peer.response_headers(stream).get("grpc-status") == "0", peer.describe()
    s.assert_serving()


def test_a_half_closed_peer_that_then_resets_is_let_go_at_once(pb, server):
    """A peer that shut its side, then reset the connection (gone both
    ways): the connection closes at the reset, its running call cancelled,
    instead of lingering until that call's answer fails to send."""
    import socket
    import struct
    from test_metrics import scrape, with_metrics
    s, metrics_port = with_metrics(server)
    slow = pb.testing_pb2.EchoRequest(payload=b"slow", delay_ms=60_000).SerializeToString()
    fast = pb.testing_pb2.EchoRequest(payload=b"fast").SerializeToString()
    peer = h2peer.RawPeer(s.address)
    peer.start()
    assert peer.send(h2peer.grpc_call(1, "/billing.v1.Testing/Echo", slow) + h2peer.grpc_call(3, "/billing.v1.Testing/Echo", fast))
    assert peer.read_until(lambda p: p.stream_done(3), timeout=5), peer.describe()
    peer.sock.shutdown(socket.SHUT_WR)
    # The FIN handled (the server answers it with GOAWAY): the slow call
    # still runs, and the connection stays for its answer.
    assert peer.read_until(lambda p: p.goaway() is not None, timeout=5), peer.describe()
    assert scrape(metrics_port)["billing_open_connections"] == 1
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.sock.close()  # RST
    deadline = time.monotonic() + 30  # (the slow call would answer at 60 s)
    while scrape(metrics_port)["billing_open_connections"] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scrape(metrics_port)["billing_open_connections"] == 0, "still open after the reset"
    s.assert_serving()


def test_oversized_message_is_resource_exhausted(pb, echo):
    with pytest.raises(grpc.RpcError) as info:
        echo(b"\x00" * (5 << 20))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(pb, info.value).reason == "MESSAGE_TOO_LARGE"
    # Same channel, same connection: still served.
    assert echo(b"after") == b"after"


def test_message_just_under_the_limit_is_accepted(echo):
    # EchoRequest framing: 1 tag byte + 4 length bytes + the payload.
    payload = b"\x5a" * ((4 << 20) - 5)
    assert echo(payload) == payload


def test_thousand_concurrent_calls_on_one_channel(pb, echo):
    requests = [pb.testing_pb2.EchoRequest(payload=f"call-{i}".encode() * (1 + i % 7), delay_ms=20)
                for i in range(1000)]
    futures = [echo.stub.Echo.future(r, timeout=30) for r in requests]
    done, not_done = wait(futures, timeout=40)
    assert not not_done, f"{len(not_done)} calls did not finish"
    mismatched = [i for i, (r, f) in enumerate(zip(requests, futures)) if f.result().payload != r.payload]
    assert not mismatched, f"{len(mismatched)} replies did not match their request, e.g. #{mismatched[0]}"


def test_undecodable_message_is_invalid_argument(served):
    with pytest.raises(grpc.RpcError) as info:
        raw_unary(served.channel(), "/billing.v1.Testing/Echo")(b"\xff\xff\xff", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_non_grpc_content_type_is_http_415(server):
    s = server()
    with h2peer.RawPeer(s.address) as peer:
        peer.start()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", "/billing.v1.Testing/Echo"),
                   (":authority", "localhost"), ("content-type", "application/json")]
        peer.send(h2peer.headers_frames(1, headers) + h2peer.data_frame(1, b"{}"))
        assert peer.read_until(lambda p: p.stream_done(1), timeout=5), peer.describe()
    assert peer.response_headers(1).get(":status") == "415", peer.describe()


def test_compressed_flag_without_encoding_is_internal(pb, server):
    """gRPC spec: the compressed flag set with no grpc-encoding is INTERNAL."""
    s = server()
    body = pb.testing_pb2.EchoRequest(payload=b"x").SerializeToString()
    with h2peer.RawPeer(s.address) as peer:
        peer.start()
        peer.send(h2peer.grpc_call(1, "/billing.v1.Testing/Echo", body, compressed=True))
        assert peer.read_until(lambda p: p.stream_done(1), timeout=5), peer.describe()
    assert peer.response_headers(1).get("grpc-status") == str(grpc.StatusCode.INTERNAL.value[0]), peer.describe()


def test_unsupported_grpc_encoding_is_unimplemented(pb, server):
    s = server()
    body = pb.testing_pb2.EchoRequest(payload=b"x").SerializeToString()
    with h2peer.RawPeer(s.address) as peer:
        peer.start()
        peer.send(h2peer.grpc_call(1, "/billing.v1.Testing/Echo", body, compressed=True,
                                   extra_headers=[("grpc-encoding", "snappy-nonexistent")]))
        assert peer.read_until(lambda p: p.stream_done(1), timeout=5), peer.describe()
    fields = peer.response_headers(1)
    assert fields.get("grpc-status") == str(grpc.StatusCode.UNIMPLEMENTED.value[0]), peer.describe()
    assert "identity" in fields.get("grpc-accept-encoding", ""), peer.describe()


# --------------------------------------------------------------------------
# TLS


def test_tls_with_ip_san_and_no_name_override(pb, server):
    """The certificate's IP SAN covers 127.0.0.1: no target name override needed."""
    s = server(tls=True)
    stub = pb.testing_pb2_grpc.TestingStub(s.channel())
    assert stub.Echo(pb.testing_pb2.EchoRequest(payload=b"tls"), timeout=10).payload == b"tls"


def test_tls_connection_ends_with_close_notify(server, tls_files):
    """A TLS connection the server ends (here: idle) ends with GOAWAY, then
    TLS close_notify: the client can tell the end from a cut connection."""
    import socket
    import ssl
    s = server(tls=True, args=("--idle-timeout-seconds", "1"))
    context = ssl.create_default_context(cafile=str(tls_files.server_cert))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as tls:
            assert tls.selected_alpn_protocol() == "h2"
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
            received = b""
            while True:  # bounded by the socket timeout and the server's idle close
                chunk = tls.recv(65536)  # SSLEOFError here: cut without close_notify
                if not chunk:
                    break
                received += chunk
            frames, at = [], 0
            while at + 9 <= len(received):
                length = int.from_bytes(received[at:at + 3], "big")
                frames.append(received[at + 3])
                at += 9 + length
            assert 7 in frames, f"no GOAWAY before the end: frame types {frames}"


def test_tls_with_name_override(pb, server):
    s = server(tls=True)
    ch = s.channel(options=[("grpc.ssl_target_name_override", "localhost")])
    assert s.health(ch) == health_pb2.HealthCheckResponse.SERVING


def test_insecure_client_to_tls_port_fails(server):
    s = server(tls=True)
    with pytest.raises(grpc.RpcError) as info:
        s.health(s.insecure_channel(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    s.assert_serving()


def test_the_certificates_expiry_is_logged_at_start_and_warned_of_when_near(server, tmp_path):
    """Certificates are read once, at start: the log says when the server's
    expires, and warns when that is within 14 days or it is not valid now
    (session 27: an expired certificate started without a word, and every
    handshake then failed at debug level only)."""
    import datetime
    from conftest import _openssl
    for days, expect in ((1, "expires soon"), (60, "TLS certificate")):
        d = tmp_path / f"cert-{days}"
        d.mkdir()
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", str(days),
                 "-keyout", "k.pem", "-out", "c.pem", "-subj", "/CN=localhost", cwd=d)
        s = server(args=("--tls-cert", str(d / "c.pem"), "--tls-key", str(d / "k.pem")))
        log = s.log_tail(200)
        lines = [line for line in log.splitlines() if expect in line]
        assert lines, log
        until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)).date()
        assert any(f"not_after={day}" in lines[0] for day in (until, until - datetime.timedelta(days=1))), lines
        assert (" warning " in lines[0]) == (days == 1), lines
        s.terminate()
        assert s.wait_exit(10) == 0


def test_tls_client_rejects_an_untrusted_server_certificate(server, tls_files):
    s = server(tls=True)
    wrong_root = grpc.ssl_channel_credentials(root_certificates=tls_files.client_ca.read_bytes())
    with pytest.raises(grpc.RpcError) as info:
        s.health(s.channel(credentials=wrong_root), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    s.assert_serving()


def test_mtls_client_with_certificate_signed_by_the_ca(server):
    s = server(client_ca=True)
    assert s.health(s.channel(client_cert=True)) == health_pb2.HealthCheckResponse.SERVING


def test_mtls_client_without_certificate_fails(server):
    s = server(client_ca=True)
    with pytest.raises(grpc.RpcError) as info:
        s.health(s.channel(client_cert=False), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    s.assert_serving()


def test_mtls_client_with_certificate_from_another_issuer_fails(server, tls_files):
    s = server(client_ca=True)
    stranger = grpc.ssl_channel_credentials(
        root_certificates=tls_files.root,
        private_key=tls_files.other_key.read_bytes(),
        certificate_chain=tls_files.other_cert.read_bytes())
    with pytest.raises(grpc.RpcError) as info:
        s.health(s.channel(credentials=stranger), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    s.assert_serving()


# --------------------------------------------------------------------------
# Graceful shutdown


def start_echo_calls(pb, s, count, delay_ms, timeout):
    """Starts `count` Echo calls on one channel and returns once the server
    has seen them: a health check on the same connection, sent after them,
    has been answered (HTTP/2 frames arrive in order)."""
    ch = s.channel()
    stub = pb.testing_pb2_grpc.TestingStub(ch)
    assert s.health(ch) == health_pb2.HealthCheckResponse.SERVING  # connection up first
    futures = [stub.Echo.future(pb.testing_pb2.EchoRequest(payload=f"{i}".encode(), delay_ms=delay_ms),
                                timeout=timeout)
               for i in range(count)]
    assert s.health(ch) == health_pb2.HealthCheckResponse.SERVING
    return futures


def outcomes(futures, timeout):
    """Each call's status code, waiting at most `timeout` for all of them."""
    done, not_done = wait(futures, timeout=timeout)
    assert not not_done, f"{len(not_done)} of {len(futures)} calls still running after {timeout} s"
    return [f.code() for f in futures]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_graceful_shutdown_lets_calls_in_flight_finish(pb, server, transport, sig):
    s = server(tls=transport == "tls", drain_seconds=60)
    futures = start_echo_calls(pb, s, 50, delay_ms=1000, timeout=90)
    stop = time.monotonic()
    s.terminate(sig)
    codes = outcomes(futures, timeout=45)
    allowed = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    assert set(codes) <= allowed, f"unexpected codes: {sorted(set(codes) - allowed, key=str)}"
    # The server had received every call before the signal: all of them finish.
    assert codes.count(grpc.StatusCode.OK) == len(codes), \
        f"{codes.count(grpc.StatusCode.OK)} of {len(codes)} finished OK: {codes}"
    mismatched = [i for i, f in enumerate(futures) if f.result().payload != f"{i}".encode()]
    assert not mismatched
    code = s.wait_exit(timeout=45)
    elapsed = time.monotonic() - stop
    assert code == 0, s.log_tail()
    # Exits once its calls are done (about 1 s), well within the 60 s drain.
    assert elapsed < 30, f"exited {elapsed:.2f} s after the signal"


def test_graceful_shutdown_ends_calls_that_outlast_the_drain(pb, server, transport):
    s = server(tls=transport == "tls", drain_seconds=1)
    futures = start_echo_calls(pb, s, 20, delay_ms=60_000, timeout=120)
    stop = time.monotonic()
    s.terminate()
    codes = outcomes(futures, timeout=30)  # the drain (1 s) ends them, not their 60 s delay
    ended = time.monotonic() - stop
    assert grpc.StatusCode.OK not in codes, codes
    assert ended < 30, f"calls ended {ended:.2f} s after the signal"
    code = s.wait_exit(timeout=30)
    elapsed = time.monotonic() - stop
    assert code == 0, s.log_tail()
    assert elapsed < 30, f"exited {elapsed:.2f} s after the signal (drain 1 s, calls of 60 s)"


def test_a_second_signal_cuts_the_drain_short(pb, server):
    """A drain of up to an hour could only be cut short with SIGKILL: a
    second SIGTERM/SIGINT now closes every connection at once (the calls
    in flight with them), and the server still stops cleanly."""
    s = server(drain_seconds=600)
    futures = start_echo_calls(pb, s, 5, delay_ms=300_000, timeout=600)
    stop = time.monotonic()
    s.terminate(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while "shutting down" not in s.log() and time.monotonic() < deadline:  # the first signal taken
        time.sleep(0.02)
    assert "shutting down" in s.log(), s.log_tail()
    s.terminate(signal.SIGINT)
    codes = outcomes(futures, timeout=60)  # ended by the second signal, not their 300 s or the 600 s drain
    assert grpc.StatusCode.OK not in codes, codes
    assert s.wait_exit(timeout=60) == 0, s.log_tail()
    assert time.monotonic() - stop < 60
    assert "second signal" in s.log() and "stopped" in s.log(), s.log_tail()


def test_a_draining_server_refuses_new_connections_at_once(pb, server):
    """Once SIGTERM has stopped the accepting, a new connection is refused
    (the client tries elsewhere at once), not queued by the kernel and left
    waiting out the drain for a SETTINGS frame that never comes."""
    import socket
    s = server(drain_seconds=8)
    futures = start_echo_calls(pb, s, 1, delay_ms=4000, timeout=20)  # keeps the server draining
    s.terminate()
    deadline = time.monotonic() + 2  # (the call ends at 4 s, the server after it)
    refused = False
    while time.monotonic() < deadline and not refused:
        try:
            with socket.create_connection(s.address, timeout=1) as sock:
                sock.settimeout(0.2)
                sock.sendall(h2peer.PREFACE + h2peer.settings())
                sock.recv(9)  # SETTINGS: accepted (the signal not handled yet)
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            refused = True  # refused, or reset where it was queued
        except socket.timeout:
            pass  # queued and never accepted: what must not happen
        time.sleep(0.05)
    assert refused, "new connections still queued 2 s into the drain"
    assert outcomes(futures, timeout=10) == [grpc.StatusCode.OK]
    assert s.wait_exit(timeout=10) == 0, s.log_tail()


def test_out_of_file_descriptors_the_server_pauses_accepting_instead_of_spinning(server):
    """With every descriptor taken, a connection the server cannot accept
    stays queued and its listening socket stays readable: the loop paused
    accepting (100 ms at a time) instead of spinning on it at 100 % of a
    core with a log line per turn; it serves again once descriptors free up."""
    import socket
    s = server(open_files=96, args=["--threads", "1"])
    assert "the open-file limit allows fewer connections than --max-connections" in s.log_tail(200)
    held = []
    try:
        for _ in range(120):  # past the limit: the rest wait in the kernel's queue
            held.append(socket.create_connection(s.address, timeout=2))
        deadline = time.monotonic() + 10  # until the server has met the limit
        while "out of file descriptors" not in s.log_tail(100_000) and time.monotonic() < deadline:
            time.sleep(0.05)
        ticks = lambda: sum(int(x) for x in open(f"/proc/{s.proc.pid}/stat").read().rsplit(")", 1)[1].split()[11:13])
        before, logged = ticks(), s.log_tail(100_000).count("out of file descriptors")
        time.sleep(2.0)  # (a measurement window, not a wait for a state)
        busy = (ticks() - before) / os.sysconf("SC_CLK_TCK")
        pauses = s.log_tail(100_000).count("out of file descriptors") - logged
        # Spinning is ~2 s of CPU and thousands of lines; paused, ~0 s and one line a 100 ms pause.
        assert busy < 1.0, f"the server used {busy:.2f} s of CPU in 2 s with no descriptors left"
        assert 1 <= pauses <= 30, f"{pauses} 'out of file descriptors' lines in 2 s"
    finally:
        for sock in held:
            sock.close()
    s.assert_serving()


def test_shutdown_when_idle_is_prompt(server):
    s = server(drain_seconds=60)
    s.assert_serving()
    stop = time.monotonic()
    s.terminate()
    assert s.wait_exit(timeout=70) == 0, s.log_tail()
    assert time.monotonic() - stop < 30  # (not the 60 s drain)


def test_shutdown_sends_two_goaways_and_does_not_wait_for_a_ping_ack(server):
    """SIGTERM: the first GOAWAY names the largest stream id (nothing is
    refused yet), then comes a PING; a peer that never acknowledges it gets
    the final GOAWAY (naming the last stream served) a second later anyway,
    and the idle connection closes then, not at the drain deadline (30 s)."""
    s = server(drain_seconds=30)
    with h2peer.RawPeer(s.address) as peer:
        peer.start()
        assert peer.read_until(lambda p: any(f.type == h2peer.SETTINGS and f.flags & h2peer.ACK for f in p.frames), 5)
        stop = time.monotonic()
        s.terminate()
        finals = lambda p: [f for f in p.frames if f.type == h2peer.GOAWAY and f.last_stream_id != 0x7FFFFFFF]
        assert peer.read_until(lambda p: finals(p), 10), peer.describe()
        kinds = [(f.type, f.last_stream_id if f.type == h2peer.GOAWAY else None) for f in peer.frames
                 if f.type in (h2peer.GOAWAY, h2peer.PING)]
        assert kinds == [(h2peer.GOAWAY, 0x7FFFFFFF), (h2peer.PING, None), (h2peer.GOAWAY, 0)], peer.describe()
        assert peer.wait_closed(10), peer.describe()
        assert time.monotonic() - stop < 10, "the connection waited out (most of) the drain"
    assert s.wait_exit(timeout=35) == 0, s.log_tail()


def test_sigterm_right_after_startup_is_not_lost(server):
    """The port file says the server is up: from then on SIGTERM must shut it
    down gracefully (exit 0), not be lost nor kill it. Sent the moment the
    port file appears, 20 times."""
    for attempt in range(20):
        s = server(poll_interval=0)
        s.terminate()
        try:
            code = s.proc.wait(timeout=s.drain_seconds + 3)
        except subprocess.TimeoutExpired:
            pytest.fail(f"attempt {attempt}: still running {s.drain_seconds + 3} s after SIGTERM "
                        f"(drain {s.drain_seconds} s): the signal was lost. log:\n{s.log_tail()}")
        assert code == 0, f"attempt {attempt}: exit code {code}; log:\n{s.log_tail()}"


def test_concurrent_requests_past_a_connections_buffer_refuse_some_calls_not_the_connection(pb, server):
    """Requests that together pass a connection's request buffer (64 MiB) —
    a client keeping to flow control can send them, since nghttp2 opens the
    windows as bytes arrive; here 18 calls of 4 MB, their DATA frames
    interleaved — refuse the calls whose bytes would pass it,
    RESOURCE_EXHAUSTED (CONNECTION_BUFFER_FULL, retry), and the connection
    stays up: a call not refused, completed, is served (the connection got
    GOAWAY, every call on it failing). (Health/Check with a 4 MB service
    name: its answer, NOT_FOUND, is small; the peer opens no window for a
    4 MB echo.)"""
    s = server()
    message = h2peer.grpc_message(health_pb2.HealthCheckRequest(service="x" * 4_000_000).SerializeToString())
    head, tail = message[:-16_000], message[-16_000:]
    streams = [1 + 2 * i for i in range(18)]
    with h2peer.RawPeer(s.address, timeout=30) as peer:
        peer.start()
        peer.send(b"".join(h2peer.headers_frames(i, h2peer.grpc_request_headers("/grpc.health.v1.Health/Check")) for i in streams))
        for offset in range(0, len(head), 16_000):  # every message but its last 16,000 bytes, interleaved
            chunk = head[offset:offset + 16_000]
            assert peer.send(b"".join(h2peer.data_frame(i, chunk, end_stream=False) for i in streams)), peer.describe()
            peer.pump()
        # 18 x ~3.98 MB sent passes 64 MiB by ~4.6 MB: two calls must be
        # refused, and once two are, the other 16 (~63.7 MB) never can be.
        def refused_now(p):
            return [i for i in streams if p.response_headers(i).get("grpc-status") is not None]
        assert peer.read_until(lambda p: len(refused_now(p)) >= 2, 20), f"fewer than two calls refused: {peer.describe()}"
        refused = refused_now(peer)
        assert all(peer.response_headers(i).get("grpc-status") == str(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])
                   for i in refused), peer.describe()
        kept = next(i for i in streams if i not in refused)
        assert peer.send(h2peer.data_frame(kept, tail, end_stream=True))
        assert peer.read_until(lambda p: p.response_headers(kept).get("grpc-status") is not None, 20), peer.describe()
        assert peer.response_headers(kept).get("grpc-status") == str(grpc.StatusCode.NOT_FOUND.value[0]), peer.describe()
        assert peer.goaway() is None, peer.describe()
    s.assert_serving()
