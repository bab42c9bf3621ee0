"""Fixtures for the interop tests: the reference gRPC client (Python grpcio)
and raw HTTP/2 peers against the real `billing` binary over loopback.

- `pb`: Python stubs generated from schema/ with grpcio-tools, once per run.
- `server`: a factory that starts `billing serve` (h2c or TLS) on a free port
  with its own database and log, and stops it at teardown; `module_server`,
  the same for servers shared by a whole test module.
- `mint_jwt`, `user_claims`: platform user tokens (HS256 JWTs) made with the
  standard library; `error_info`: the ErrorInfo of a refused call.
- At the end of the run, the output of every server the suite started is
  searched for its demo key, Owner token and JWT secret (outside the demo
  banner) and for anything shaped like an API key or a JWT (issue 5).
- `tls_files`: a self-signed server certificate, plus a CA and a client
  certificate it signed (for mTLS), made with the openssl CLI.

The binary is $BILLING_BIN, or .build/debug/billing by default.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schema"

# Bounds on every wait, so that a broken server fails a test instead of
# hanging the run.
STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
RPC_TIMEOUT_S = 10.0

# No proxy from the environment may sit between the client and loopback.
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]

# Servers start with SIGHUP as a terminal's server has it, whatever this run
# inherited (under `nohup` it is ignored, and a server keeps it so): set
# here, in this process, which its children inherit — not in a
# `preexec_fn`, which runs Python between fork and exec (see `start`).
signal.signal(signal.SIGHUP, signal.SIG_DFL)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, details, metadata):
        self.method = details.method
        self.timeout = details.timeout
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)
        self.metadata = metadata


class BearerToken(grpc.UnaryUnaryClientInterceptor):
    """Adds `authorization: Bearer <token>` to every unary call of a channel."""

    def __init__(self, token: str):
        self.header = ("authorization", f"Bearer {token}")

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(_CallDetails(details, list(details.metadata or ()) + [self.header]), request)


def billing_binary() -> Path:
    path = Path(os.environ.get("BILLING_BIN", ROOT / ".build" / "debug" / "billing"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        pytest.exit(f"billing binary not found at {path}; build it (swift build --product billing) "
                    "or set BILLING_BIN", returncode=2)
    return path


# --------------------------------------------------------------------------
# Generated stubs


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """Stubs for billing.v1 and google.rpc generated from schema/ into a temp
    dir on sys.path. The health client comes from grpcio-health-checking."""
    from grpc_tools import protoc
    import grpc_tools

    out = tmp_path_factory.mktemp("gen")
    protos = sorted(str(p.relative_to(SCHEMA)) for p in SCHEMA.glob("billing/**/*.proto"))
    protos += sorted(str(p.relative_to(SCHEMA)) for p in SCHEMA.glob("google/rpc/*.proto"))
    assert protos, f"no .proto files under {SCHEMA}"
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main([
        "grpc_tools.protoc", f"-I{SCHEMA}", f"-I{well_known}",
        f"--python_out={out}", f"--grpc_python_out={out}", *protos,
    ])
    assert rc == 0, f"protoc failed ({rc}) on {protos}"
    sys.path.insert(0, str(out))

    from billing.v1 import testing_pb2, testing_pb2_grpc  # noqa: E402
    from billing.v1 import common_pb2, metering_pb2, metering_pb2_grpc  # noqa: E402
    from billing.v1 import accounts_pb2, accounts_pb2_grpc, admin_pb2, admin_pb2_grpc  # noqa: E402
    from billing.v1 import payments_pb2, payments_pb2_grpc  # noqa: E402
    from google.rpc import status_pb2, error_details_pb2  # noqa: E402

    return types.SimpleNamespace(
        testing_pb2=testing_pb2, testing_pb2_grpc=testing_pb2_grpc,
        common_pb2=common_pb2, metering_pb2=metering_pb2, metering_pb2_grpc=metering_pb2_grpc,
        accounts_pb2=accounts_pb2, accounts_pb2_grpc=accounts_pb2_grpc,
        admin_pb2=admin_pb2, admin_pb2_grpc=admin_pb2_grpc,
        payments_pb2=payments_pb2, payments_pb2_grpc=payments_pb2_grpc,
        status_pb2=status_pb2, error_details_pb2=error_details_pb2,
    )


# --------------------------------------------------------------------------
# Certificates


def _openssl(*args, cwd):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"openssl {' '.join(args)} failed:\n{result.stderr}"


@dataclass
class TLSFiles:
    server_cert: Path  # self-signed, CN=localhost, SAN DNS:localhost, IP:127.0.0.1
    server_key: Path
    client_ca: Path    # a CA that signs client certificates
    client_cert: Path  # signed by client_ca, extendedKeyUsage clientAuth
    client_key: Path
    other_cert: Path   # a self-signed client certificate client_ca did not sign
    other_key: Path

    @property
    def root(self) -> bytes:
        return self.server_cert.read_bytes()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TLSFiles:
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
    _openssl("req", "-x509", *ec, "-keyout", "server.key", "-out", "server.pem",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d)
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
             "-subj", "/CN=billing interop test client CA", cwd=d)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=interop-client", cwd=d)
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                                  "extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "1", "-extfile", "client.ext", "-out", "client.pem", cwd=d)
    _openssl("req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem",
             "-subj", "/CN=stranger", cwd=d)
    return TLSFiles(d / "server.pem", d / "server.key", d / "ca.pem", d / "client.pem", d / "client.key",
                    d / "other.pem", d / "other.key")


# --------------------------------------------------------------------------
# The server under test


class Server:
    """A running `billing serve`. `port`, `proc`, `log_path`; helpers to
    open channels and to check that it still serves."""

    def __init__(self, proc, port, log_path, tls: TLSFiles | None, drain_seconds: int, db_path: Path | None = None):
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.tls = tls
        self.drain_seconds = drain_seconds
        self.db_path = db_path  # the SQLite ledger it serves
        self.credentials_path: Path | None = None  # --demo-credentials-file (written on a fresh db without --no-demo)
        self.stderr_path: Path | None = None  # standard error, when started with split_output (else in log_path)
        self.jwt_secret_path: Path | None = None  # --jwt-secret-file, or the default <db>.jwt-secret
        self.stopped_on_purpose = False
        self._channels = []

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def log(self) -> str:
        """Everything the server wrote (standard output, then standard error when split)."""
        return self.stdout_text() + (self.stderr_text() if self.stderr_path is not None else "")

    def stdout_text(self) -> str:
        """`log_path`: standard output (and standard error too unless started with split_output)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_text(self) -> str:
        """Standard error alone (only when started with split_output)."""
        assert self.stderr_path is not None, "started without split_output: stderr is in log_path"
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def channel(self, *, client_cert: bool = False, credentials=None, options=()) -> grpc.Channel:
        """An insecure channel for h2c servers, a secure one (trusting the
        self-signed certificate; with the CA-signed client certificate when
        `client_cert`) for TLS servers. Closed at teardown."""
        opts = CHANNEL_OPTIONS + list(options)
        if self.tls is None and credentials is None:
            ch = grpc.insecure_channel(self.target, options=opts)
        else:
            if credentials is None:
                credentials = self.tls_credentials(client_cert=client_cert)
            ch = grpc.secure_channel(self.target, credentials, options=opts)
        self._channels.append(ch)
        return ch

    def service_key(self) -> str:
        """The demo service key (every scope) this server created on its fresh database."""
        assert self.credentials_path is not None and self.credentials_path.exists(), \
            f"no demo credentials at {self.credentials_path} (started with --no-demo, or not on a fresh db?)"
        return json.loads(self.credentials_path.read_text())["service_key"]

    def owner_token(self) -> str:
        """The demo Owner token (a JWT for account "demo") this server printed on its fresh database."""
        assert self.credentials_path is not None and self.credentials_path.exists(), \
            f"no demo credentials at {self.credentials_path} (started with --no-demo, or not on a fresh db?)"
        return json.loads(self.credentials_path.read_text())["owner_token"]

    def jwt_secret(self) -> bytes:
        """The HMAC secret this server verifies user tokens with (as the server
        reads it: text trimmed of surrounding whitespace, other bytes as they are)."""
        assert self.jwt_secret_path is not None and self.jwt_secret_path.exists(), \
            f"no JWT secret at {self.jwt_secret_path}"
        raw = self.jwt_secret_path.read_bytes()
        try:
            return raw.decode("utf-8").strip().encode()
        except UnicodeDecodeError:
            return raw

    def mint(self, **claims) -> str:
        """A user token this server accepts: `user_claims(**claims)` signed HS256 with its secret."""
        return mint_jwt(self.jwt_secret(), user_claims(**claims))

    def authorized_channel(self, token: str | None = None, **kwargs) -> grpc.Channel:
        """`channel(**kwargs)` whose calls carry `authorization: Bearer <token>`
        (default: this server's demo service key)."""
        return grpc.intercept_channel(self.channel(**kwargs), BearerToken(token or self.service_key()))

    def insecure_channel(self, options=()) -> grpc.Channel:
        ch = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS + list(options))
        self._channels.append(ch)
        return ch

    def tls_credentials(self, *, client_cert: bool = False):
        assert self.tls is not None
        if client_cert:
            return grpc.ssl_channel_credentials(
                root_certificates=self.tls.root,
                private_key=self.tls.client_key.read_bytes(),
                certificate_chain=self.tls.client_cert.read_bytes())
        return grpc.ssl_channel_credentials(root_certificates=self.tls.root)

    def health(self, channel=None, service: str = "", timeout: float = RPC_TIMEOUT_S):
        channel = channel or self.channel(client_cert=True)
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status

    def assert_serving(self):
        """A new, well-behaved client gets SERVING from the health check."""
        assert self.proc.poll() is None, \
            f"server exited with {self.proc.returncode}; log:\n{self.log_tail()}"
        ch = self.channel(client_cert=True)
        try:
            status = self.health(ch)
        except grpc.RpcError as error:
            pytest.fail(f"a well-behaved client was not served: {error.code()} {error.details()}\n"
                        f"server log:\n{self.log_tail()}")
        assert status == health_pb2.HealthCheckResponse.SERVING

    def terminate(self, sig=signal.SIGTERM):
        """Starts a graceful shutdown (the test then waits for the exit)."""
        self.stopped_on_purpose = True
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server did not exit within {timeout} s; log:\n{self.log_tail()}")

    def close_channels(self):
        for ch in self._channels:
            ch.close()
        self._channels.clear()

    def stop(self, timeout: float) -> bool:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`.
        False when it had to be killed."""
        self.close_channels()
        if self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            return False


# Every server the suite started, for the end-of-run search of their logs.
ALL_SERVERS: list[Server] = []

DEMO_BANNER_FIRST, DEMO_BANNER_LAST = "Demo account created", "(start with --no-demo"
API_KEY_SHAPE = re.compile(r"bk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


def without_demo_banner(text: str) -> str:
    """The output without the demo banner's lines (the one place the demo
    key and Owner token are meant to appear)."""
    kept, inside = [], False
    for line in text.splitlines():
        if line.startswith(DEMO_BANNER_FIRST):
            inside = True
        if not inside:
            kept.append(line)
        elif line.startswith(DEMO_BANNER_LAST):
            inside = False
    return "\n".join(kept)


def secrets_in_server_output(s: "Server") -> list[str]:
    """What a server's output shows that it must not: outside the demo
    banner, its demo key, Owner token or JWT secret, or anything shaped like
    an API key or a JWT."""
    text = without_demo_banner(s.log())
    known = {}
    try:
        credentials = json.loads(s.credentials_path.read_text())
        known["demo key"] = credentials["service_key"]
        known["demo key secret"] = credentials["service_key"][16:]
        known["demo Owner token"] = credentials["owner_token"]
        known["demo Owner token signature"] = credentials["owner_token"].rsplit(".", 1)[-1]
    except (AttributeError, OSError, ValueError, KeyError):
        pass
    try:
        known["JWT secret"] = s.jwt_secret().decode(errors="replace")
    except (AssertionError, OSError):
        pass
    found = [f"{name}" for name, value in known.items() if len(value) >= 16 and value in text]
    found += [f"API key {m[:16]}…" for m in API_KEY_SHAPE.findall(text)]
    found += [f"JWT {m[:24]}…" for m in JWT_SHAPE.findall(text)]
    return found


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_server_log():
    """Issue 5's log check over the whole run: once every test is done, the
    output of every server the suite started is searched for secrets."""
    yield
    leaks = [f"{s.log_path}: {', '.join(found)}" for s in ALL_SERVERS if (found := secrets_in_server_output(s))]
    if leaks:
        pytest.fail("secrets in server logs (outside the demo banner):\n" + "\n".join(leaks))


class ServerFactory:
    """Starts `billing serve` processes in `directory` and stops them all at
    `finish()`. The `server` fixture (one per test) and `module_server` (one
    per test module, for tables of many cases on one server) are its `start`."""

    def __init__(self, directory: Path, tls_files: TLSFiles):
        self.binary = billing_binary()
        self.directory = directory
        self.tls_files = tls_files
        self.started: list[Server] = []

    def start(self, *, tls: bool = False, client_ca: bool = False, drain_seconds: int = 2,
              args=(), poll_interval: float = 0.005, db: Path | None = None, split_output: bool = False,
              open_files: int | None = None) -> Server:
        tmp_path, tls_files = self.directory, self.tls_files
        index = len(self.started)
        port_file = tmp_path / f"port-{index}"
        log_path = tmp_path / f"billing-{index}.log"
        stderr_path = tmp_path / f"billing-{index}.stderr.log" if split_output else None
        db_path = Path(db) if db is not None else tmp_path / f"billing-{index}.sqlite"
        credentials_path = tmp_path / f"demo-credentials-{index}.json"
        command = [str(self.binary), "serve", "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                   "--enable-testing-service", "--db", str(db_path), "--drain-seconds", str(drain_seconds),
                   "--log-level", "debug"]
        if "--no-demo" not in args:  # (nothing to write without the demo: refused with it)
            command += ["--demo-credentials-file", str(credentials_path)]
        if tls or client_ca:
            command += ["--tls-cert", str(tls_files.server_cert), "--tls-key", str(tls_files.server_key)]
        if client_ca:
            command += ["--tls-client-ca", str(tls_files.client_ca)]
        command += list(args)
        # Accounts the older suites open on a trial start from a zero balance,
        # as their expected balances assume; test_lifecycle sets its own grant.
        if "--trial-credit-micros" not in command:
            command += ["--trial-credit-micros", "0"]
        jwt_secret_path = Path(str(db_path) + ".jwt-secret")
        if "--jwt-secret-file" in command:
            jwt_secret_path = Path(command[len(command) - 1 - command[::-1].index("--jwt-secret-file") + 1])
            if not jwt_secret_path.is_absolute():
                jwt_secret_path = ROOT / jwt_secret_path
        log = open(log_path, "wb")
        err = open(stderr_path, "wb") if stderr_path is not None else None
        # The process's soft and hard limit on descriptors, by prlimit(1):
        # no Python runs between fork and exec (a `preexec_fn` did, and in a
        # process with grpcio's threads the child could abort in grpcio's
        # fork handlers before exec — session 29, once under load).
        spawned = command if open_files is None else ["prlimit", f"--nofile={open_files}:{open_files}", "--", *command]
        # Run from the repository root, as the README does, so that default
        # paths (config/) resolve; everything the server writes is in tmp_path.
        proc = subprocess.Popen(spawned, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=err if err is not None else subprocess.STDOUT, cwd=ROOT)
        log.close()
        if err is not None:
            err.close()

        def output() -> str:
            text = log_path.read_text(errors="replace")
            return text + (stderr_path.read_text(errors="replace") if stderr_path is not None else "")

        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        port = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"billing exited with {proc.returncode} before listening:\n"
                            f"{' '.join(command)}\n{output()}")
            try:
                text = port_file.read_text().strip()
            except FileNotFoundError:
                text = ""
            if text:
                port = int(text)
                break
            time.sleep(poll_interval)
        if port is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
            pytest.fail(f"no port file after {STARTUP_TIMEOUT_S} s:\n{output()}")
        s = Server(proc, port, log_path, tls_files if (tls or client_ca) else None, drain_seconds, db_path)
        s.credentials_path = credentials_path
        s.stderr_path = stderr_path
        s.jwt_secret_path = jwt_secret_path
        self.started.append(s)
        ALL_SERVERS.append(s)
        return s

    def finish(self) -> str | None:
        """Stops every server; why the test fails (a server died on its own or hung), or None."""
        started = self.started
        died = [(s, s.proc.poll()) for s in started
                if not s.stopped_on_purpose and s.proc.poll() is not None]
        # Shutdown is bounded by the drain: a server still running well after it is hung.
        hung = [s for s in started if not s.stop(timeout=s.drain_seconds + 5)]
        if died:
            s, code = died[0]
            return f"server exited on its own during the test (code {code}); log:\n{s.log_tail()}"
        if hung:
            s = hung[0]
            return (f"server still running {s.drain_seconds + 5} s after SIGTERM (drain {s.drain_seconds} s); "
                    f"killed. log:\n{s.log_tail()}")
        return None


@pytest.fixture
def server(request, tmp_path, tls_files):
    """Factory: `server(tls=False, client_ca=False, drain_seconds=2, args=(),
    poll_interval=0.005, db=None, split_output=False)` starts `billing serve`
    (on `db`, e.g. the `db_path` of an earlier server to restart it, else a
    new database), returns a Server as soon as the port file has the port
    (polled every `poll_interval` seconds, 0 for a busy wait); every server
    it started is stopped at teardown (SIGTERM, bounded wait, then SIGKILL).
    A server that died during the test without being told to fails the
    test's teardown. `split_output`: standard error goes to its own file
    (`Server.stderr_path`) instead of `log_path`."""
    factory = ServerFactory(tmp_path, tls_files)
    request.node.billing_servers = factory.started
    yield factory.start
    failure = factory.finish()
    if failure:
        pytest.fail(failure)


@pytest.fixture(scope="module")
def module_server(request, tmp_path_factory, tls_files):
    """`server`'s factory for a whole test module: servers live until the
    module's last test (fast tables of many cases on one server)."""
    factory = ServerFactory(tmp_path_factory.mktemp("module-server"), tls_files)
    request.module.billing_module_servers = factory.started
    yield factory.start
    failure = factory.finish()
    if failure:
        pytest.fail(failure)


# --------------------------------------------------------------------------
# User tokens (the platform's HS256 JWTs), minted with the standard library


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def user_claims(*, account_id: str = "demo", role: str = "owner", permissions=(), sub: str = "user-1",
                issuer: str = "platform", audience: str = "billing", ttl: int = 600,
                now: int | None = None, **extra) -> dict:
    """The claims of a platform user token, valid for `ttl` seconds from `now`.
    `extra` adds or overrides claims (e.g. nbf); a value None removes the claim."""
    now = int(time.time()) if now is None else now
    claims = {"sub": sub, "account_id": account_id, "role": role, "permissions": list(permissions),
              "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl}
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def mint_jwt(secret: bytes, claims: dict, *, alg: str = "HS256", header: dict | None = None,
             signature: bytes | None = None) -> str:
    """A compact JWS: header (default {"alg": alg, "typ": "JWT"}), claims, and
    an HMAC signature with `secret` for HS256/HS384/HS512 (`signature` forces
    one; alg "none" gets an empty signature)."""
    if isinstance(secret, str):
        secret = secret.encode()
    head = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = (b64url(json.dumps(head, separators=(",", ":")).encode()) + "."
                     + b64url(json.dumps(claims, separators=(",", ":")).encode()))
    if signature is None:
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(alg)
        signature = hmac.new(secret, signing_input.encode(), digest).digest() if digest else b""
    return signing_input + "." + b64url(signature)


def error_info(pb, error: grpc.RpcError):
    """The google.rpc.ErrorInfo of a refused call (first detail of
    grpc-status-details-bin), or None when the status carries none."""
    raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    if raw is None:
        return None
    status = pb.status_pb2.Status.FromString(raw)
    info = pb.error_details_pb2.ErrorInfo()
    for detail in status.details:
        if detail.Unpack(info):
            return info
    return None


def billing_verify(db_path) -> subprocess.CompletedProcess:
    """`billing verify --db PATH` (read-only; fine while the server runs)."""
    return subprocess.run([str(billing_binary()), "verify", "--db", str(db_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def verify():
    """`verify(db_path)` asserts that `billing verify --db` exits 0 and returns its output."""
    def run(db_path) -> str:
        result = billing_verify(db_path)
        assert result.returncode == 0, \
            f"billing verify --db {db_path} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        return result.stdout
    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of each server's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for index, s in enumerate(getattr(item, "billing_servers", [])):
            report.sections.append((f"billing log {index} ({s.log_path})", s.log_tail(60)))
        for index, s in enumerate(getattr(getattr(item, "module", None), "billing_module_servers", [])):
            report.sections.append((f"billing module server log {index} ({s.log_path})", s.log_tail(60)))
