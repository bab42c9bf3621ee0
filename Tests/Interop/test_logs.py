"""Nothing secret in logs or help: a server at --log-level debug, with its
standard output and standard error kept apart, is driven through calls that
succeed and calls that fail with every kind of secret (service keys valid,
revoked and unknown, user tokens valid, forged and expired, an oversized
token, injected headers, a card number); then it is stopped and both streams
are searched for every secret used, whole and in pieces. The demo banner on
standard output at start-up is the one place the demo key and Owner token
may appear. `--help` of every command is searched too.
"""

import os
import re
import secrets
import signal
import stat
import subprocess
import time
from pathlib import Path

import grpc

import h2peer
from conftest import ROOT, RPC_TIMEOUT_S, billing_binary, mint_jwt, user_claims
from h2peer import RawPeer

API_KEY_SHAPE = re.compile(r"bk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
WINDOW = 12  # no 12-character piece of a secret may appear either
BANNER_FIRST, BANNER_LAST = "Demo account created", "(start with --no-demo"


class Secrets:
    """Every secret the test used: `whole` (must not appear) and `pieces`
    (the secret parts, searched in windows of WINDOW characters)."""

    def __init__(self):
        self.whole: dict[str, str] = {}
        self.pieces: dict[str, str] = {}

    def key(self, name, token):
        self.whole[name] = token
        self.pieces[f"{name} (secret part)"] = token[16:]  # bk_ + 12 hex + _ , then the secret

    def jwt(self, name, token):
        self.whole[name] = token
        if token.count(".") == 2 and len(token.rsplit(".", 1)[1]) >= WINDOW:
            self.pieces[f"{name} (signature)"] = token.rsplit(".", 1)[1]

    def plain(self, name, value):
        self.whole[name] = value
        self.pieces[name] = value

    def leaks(self, text: str, *, skip=()) -> list[str]:
        found = [f"{name}: whole" for name, value in self.whole.items() if name not in skip and value in text]
        for name, value in self.pieces.items():
            if any(name.startswith(s) for s in skip):
                continue
            for i in range(0, len(value) - WINDOW + 1):
                if value[i:i + WINDOW] in text:
                    found.append(f"{name}: {value[i:i + WINDOW]!r} at offset {i}")
                    break
        found += [f"API key shape: {m}" for m in API_KEY_SHAPE.findall(text)]
        found += [f"JWT shape: {m[:40]}…" for m in JWT_SHAPE.findall(text)]
        return found


def call(channel, path, request, authorization):
    rpc = channel.unary_unary(path, request_serializer=lambda r: r.SerializeToString(), response_deserializer=None)
    metadata = [] if authorization is None else [("authorization", authorization)]
    try:
        rpc(request, metadata=metadata, timeout=RPC_TIMEOUT_S)
        return grpc.StatusCode.OK
    except grpc.RpcError as error:
        return error.code()


def raw(s, path, body, headers):
    with RawPeer(s.address) as peer:
        peer.start()
        peer.send(h2peer.headers_frames(1, h2peer.grpc_request_headers(path, extra=headers))
                  + h2peer.data_frame(1, h2peer.grpc_message(body)))
        peer.read_until(lambda p: p.stream_done(1) or p.closed, 5.0)
        return peer.response_headers(1).get("grpc-status")


def exercise(pb, s, known: Secrets):
    """Calls that succeed and calls that fail, with every kind of secret."""
    m, c, ad, p = pb.metering_pb2, pb.common_pb2, pb.admin_pb2, pb.payments_pb2
    jwt_secret = s.jwt_secret()
    known.plain("JWT secret", jwt_secret.decode())
    demo_key, owner = s.service_key(), s.owner_token()
    known.key("demo key", demo_key)
    known.jwt("demo owner token", owner)
    ch = s.channel()
    items = [c.LineItem(llm=c.LlmUsage(model="gpt-4o", input_tokens=100, output_tokens=20)),
             c.LineItem(tool_call=c.ToolCallUsage(integration="slack", calls=2))]

    def debit(key, account="demo"):
        return m.DebitRequest(account_id=account, workspace_id="w1", agent_id="a1", run_id="log-run",
                              idempotency_key=key, line_items=items)

    quote = m.QuoteRequest(account_id="demo", line_items=items)
    usage = m.GetUsageRequest(account_id="demo")
    bearer = "Bearer {}".format
    outcomes = []

    def expect(code, path, request, authorization):
        got = call(ch, path, request, authorization)
        outcomes.append((path, got))
        assert got == code, f"{path}: {got}, expected {code}"

    OK, UNAUTH, DENIED, NOT_FOUND = (grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED,
                                     grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
    # The demo key: every scope.
    expect(OK, "/billing.v1.Metering/Debit", debit("log-1"), bearer(demo_key))
    expect(OK, "/billing.v1.Metering/Quote", quote, bearer(demo_key))
    expect(OK, "/billing.v1.Metering/DebitBatch", m.DebitBatchRequest(debits=[debit("log-2"), debit("log-3", "nobody")]),
           bearer(demo_key))
    expect(NOT_FOUND, "/billing.v1.Metering/Debit", debit("log-4", "nobody"), bearer(demo_key))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "/billing.v1.Metering/Debit", m.DebitRequest(account_id="demo"),
           bearer(demo_key))
    expect(OK, "/billing.v1.Accounts/CreateAccount", pb.accounts_pb2.CreateAccountRequest(account_id="acme"),
           bearer(demo_key))
    expect(OK, "/billing.v1.Admin/GrantCredits", ad.GrantCreditsRequest(
        account_id="acme", amount_micros=5_000_000, reason="log test", idempotency_key="g1"), bearer(demo_key))

    # A key made over the API, used, revoked, used again.
    admin = pb.admin_pb2_grpc.AdminStub(s.authorized_channel(demo_key))
    created = admin.CreateApiKey(ad.CreateApiKeyRequest(name="log test", scopes=["metering:write", "metering:read"]),
                                 timeout=RPC_TIMEOUT_S)
    known.key("created key", created.secret)
    expect(OK, "/billing.v1.Metering/Debit", debit("log-5"), bearer(created.secret))
    expect(DENIED, "/billing.v1.Admin/ListApiKeys", ad.ListApiKeysRequest(), bearer(created.secret))
    expect(OK, "/billing.v1.Admin/RevokeApiKey", ad.RevokeApiKeyRequest(key_id=created.key.key_id), bearer(demo_key))
    expect(UNAUTH, "/billing.v1.Metering/Debit", debit("log-6"), bearer(created.secret))
    expect(OK, "/billing.v1.Admin/ListApiKeys", ad.ListApiKeysRequest(include_revoked=True), bearer(demo_key))
    expect(OK, "/billing.v1.Admin/ListAuditLog", ad.ListAuditLogRequest(), bearer(demo_key))

    # Keys that are not keys.
    unknown = f"bk_{secrets.token_hex(6)}_{created.secret[16:][::-1]}"
    known.key("unknown key", unknown)
    expect(UNAUTH, "/billing.v1.Metering/Quote", quote, bearer(unknown))
    malformed = "bk_zz_" + secrets.token_urlsafe(32)
    known.plain("malformed key", malformed)
    expect(UNAUTH, "/billing.v1.Metering/Quote", quote, bearer(malformed))
    expect(UNAUTH, "/billing.v1.Metering/Quote", quote, bearer(demo_key + "x"))
    expect(UNAUTH, "/billing.v1.Metering/Quote", quote, "Basic " + demo_key)

    # User tokens: the demo Owner's, minted ones, forged ones.
    expect(OK, "/billing.v1.Metering/GetUsage", usage, bearer(owner))
    expect(DENIED, "/billing.v1.Metering/Debit", debit("log-7"), bearer(owner))
    tokens = {
        "admin token": (OK, mint_jwt(jwt_secret, user_claims(role="admin"))),
        "member token": (DENIED, mint_jwt(jwt_secret, user_claims(role="member"))),
        "reader token": (OK, mint_jwt(jwt_secret, user_claims(role="viewer", permissions=["billing:read"]))),
        "other account token": (NOT_FOUND, mint_jwt(jwt_secret, user_claims(account_id="acme", role="owner"))),
        "expired token": (UNAUTH, mint_jwt(jwt_secret, user_claims(now=int(time.time()) - 7200, ttl=60))),
        "wrong audience token": (UNAUTH, mint_jwt(jwt_secret, user_claims(audience="other"))),
        "HS512 token": (UNAUTH, mint_jwt(jwt_secret, user_claims(), alg="HS512")),
        "alg none token": (UNAUTH, mint_jwt(jwt_secret, user_claims(), alg="none", signature=b"n" * 32)),
    }
    other_secret = secrets.token_hex(32)
    known.plain("another JWT secret", other_secret)
    tokens["forged token"] = (UNAUTH, mint_jwt(other_secret.encode(), user_claims()))
    for name, (code, token) in tokens.items():
        known.jwt(name, token)
        expect(code, "/billing.v1.Metering/GetUsage", usage, bearer(token))
    expect(UNAUTH, "/billing.v1.Metering/GetUsage", usage, bearer(owner[:-4]))  # a truncated signature
    # An oversized token: its signature must not be echoed either.
    big = mint_jwt(jwt_secret, user_claims(padding="p" * 12000))
    known.jwt("oversized token", big)
    expect(UNAUTH, "/billing.v1.Metering/GetUsage", usage, bearer(big[:9000]))  # over the token limit
    assert raw(s, "/billing.v1.Metering/GetUsage", usage.SerializeToString(), [("authorization", bearer(big))]) != "0"

    # A card number: it goes to the gateway, never to the logs.
    card = "4111111111111111"
    known.plain("card number", card)
    known.plain("card number, spaced", "4111 1111 1111 1111")
    expect(OK, "/billing.v1.Payments/SetPaymentMethod", p.SetPaymentMethodRequest(
        account_id="demo", payment_method=p.PaymentMethodInput(card=p.CardInput(
            number=card, exp_month=12, exp_year=2099, holder_name="Demo Owner"))), bearer(owner))

    # Raw HTTP/2: injected, duplicated and lookalike credentials.
    body = quote.SerializeToString()
    for headers in ([("authorization", f"Bearer {demo_key}\r\nx-injected: 1".encode())],
                    [("authorization", f"Bearer {demo_key}\x00".encode())],
                    [("authorization", "garbage"), ("authorization", f"Bearer {demo_key}")],
                    [("x-api-key", demo_key), ("authorization", f"Bearer {unknown}")],
                    [("Authorization", f"Bearer {created.secret}")]):
        assert raw(s, "/billing.v1.Metering/Quote", body, headers) != "0", headers
    return outcomes


def banner_and_rest(stdout: str) -> tuple[list[str], list[str]]:
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(BANNER_FIRST)]
    assert len(starts) == 1, f"expected one demo banner on stdout:\n{stdout}"
    end = next(i for i in range(starts[0], len(lines)) if lines[i].startswith(BANNER_LAST))
    return lines[starts[0]:end + 1], lines[:starts[0]] + lines[end + 1:]


def test_no_secret_in_the_server_logs(pb, server):
    s = server(split_output=True)  # --log-level debug (the factory's default), fresh db: the demo banner
    known = Secrets()
    outcomes = exercise(pb, s, known)
    assert len(outcomes) > 30
    s.terminate()
    assert s.wait_exit(timeout=s.drain_seconds + 10) == 0
    stdout, stderr = s.stdout_text(), s.stderr_text()

    assert "listening" in stderr and "stopped" in stderr, f"not the server's log?\n{stderr}"
    # Every line parses as key=value fields (a value with a space, quote, `=` or
    # control character in double quotes, escaped), then [source] message:
    # `key_filter=0 key hashes read from the index` read as four fields.
    field = r'[a-z_]+=(?:"(?:[^"\\\x00-\x1f]|\\.)*"|[^\s"\\=]+)'
    line_shape = re.compile(r"^\S+ (trace|debug|info|notice|warning|error|critical) billing:(?: " + field + r")* \[\w+\] .*$")
    unparsed = [line for line in stderr.splitlines() if not line_shape.match(line)]
    assert not unparsed, "log lines that do not parse as key=value fields:\n" + "\n".join(unparsed[:10])
    assert any('="' in line for line in stderr.splitlines()), "no quoted value in a whole run's log"
    leaks = known.leaks(stderr)
    assert not leaks, "secrets in standard error (the log):\n" + "\n".join(leaks) + "\n--- log:\n" + stderr

    banner, rest = banner_and_rest(stdout)
    text = "\n".join(banner)
    assert known.whole["demo key"] in text and known.whole["demo owner token"] in text, \
        f"the banner does not show the demo credentials:\n{text}"
    leaks = known.leaks(text, skip=("demo key", "demo owner token"))
    # The banner's own key and token match the shapes; anything else is a leak.
    leaks = [x for x in leaks if not x.startswith(("API key shape: " + known.whole["demo key"],
                                                   "JWT shape: " + known.whole["demo owner token"][:40]))]
    assert not leaks, "secrets in the demo banner besides the demo credentials:\n" + "\n".join(leaks)
    leaks = known.leaks("\n".join(rest))
    assert not leaks, "secrets on standard output outside the demo banner:\n" + "\n".join(leaks) + "\n" + stdout


def test_no_secret_on_a_restart(pb, server):
    """A restart on the same database prints no banner and logs nothing secret."""
    first = server(split_output=True)
    known = Secrets()
    exercise(pb, first, known)
    first.terminate()
    assert first.wait_exit(timeout=first.drain_seconds + 10) == 0
    again = server(split_output=True, db=first.db_path, args=["--jwt-secret-file", str(first.jwt_secret_path)])
    ch = again.channel()
    m = pb.metering_pb2
    assert call(ch, "/billing.v1.Metering/GetUsage", m.GetUsageRequest(account_id="demo"),
                f"Bearer {first.owner_token()}") == grpc.StatusCode.OK
    assert call(ch, "/billing.v1.Metering/GetUsage", m.GetUsageRequest(account_id="demo"),
                f"Bearer {first.service_key()}x") == grpc.StatusCode.UNAUTHENTICATED
    again.terminate()
    assert again.wait_exit(timeout=again.drain_seconds + 10) == 0
    assert BANNER_FIRST not in again.stdout_text()
    leaks = known.leaks(again.stdout_text() + again.stderr_text())
    assert not leaks, "\n".join(leaks)


# --------------------------------------------------------------------------
# --help


def help_commands() -> list[list[str]]:
    """Every command's --help, found from `billing --help` and `billing keys --help`."""
    def subcommands(*path):
        out = subprocess.run([str(billing_binary()), *path, "--help"], capture_output=True, text=True, timeout=30,
                             cwd=ROOT).stdout
        section = out.split("SUBCOMMANDS:", 1)[1] if "SUBCOMMANDS:" in out else ""
        return [line.split()[0] for line in section.splitlines() if re.match(r"^  [a-z][a-z-]*( |$)", line)]

    commands = [["--help"], ["help"]]
    for sub in subcommands():
        commands += [[sub, "--help"], ["help", sub]]
        for nested in subcommands(sub):
            commands.append([sub, nested, "--help"])
    return commands


def test_help_output_has_no_secret(server):
    s = server()  # a server whose secrets exist on disk while --help runs
    known = Secrets()
    known.key("demo key", s.service_key())
    known.jwt("demo owner token", s.owner_token())
    known.plain("JWT secret", s.jwt_secret().decode())
    env_key = f"bk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    known.key("BILLING_KEY from the environment", env_key)
    default_secret = ROOT / "var" / "billing.sqlite.jwt-secret"
    if default_secret.exists():
        known.plain("var/ JWT secret", default_secret.read_text().strip())
    commands = help_commands()
    assert ["serve", "--help"] in commands and ["keys", "--help"] in commands and \
        ["keys", "create", "--help"] in commands, commands
    env = dict(os.environ, BILLING_KEY=env_key)
    for command in commands:
        result = subprocess.run([str(billing_binary()), *command], capture_output=True, text=True, timeout=30,
                                cwd=ROOT, env=env)
        output = result.stdout + result.stderr
        assert result.returncode == 0 and "USAGE" in output, f"billing {' '.join(command)}: {result.returncode}\n{output}"
        leaks = known.leaks(output)
        assert not leaks, f"billing {' '.join(command)}:\n" + "\n".join(leaks) + "\n" + output


def test_the_search_finds_secrets_whole_and_in_pieces():
    known = Secrets()
    key = "bk_0123456789ab_" + "Q" * 20 + "r" * 23
    known.key("key", key)
    known.jwt("token", mint_jwt(b"s" * 32, user_claims()))
    known.plain("secret", "0f" * 32)
    assert known.leaks("nothing here, key id 0123456789ab is public") == []
    assert known.leaks(f"token={key}")                        # whole
    assert known.leaks("...QQQQQQQQrrrr...")                   # a piece of the secret part
    assert known.leaks("sig " + known.whole["token"].rsplit(".", 1)[1][5:20])
    assert known.leaks("0f0f0f0f0f0f0f")                       # a piece of the JWT secret
    assert known.leaks("bk_fedcba987654_" + "x" * 43)         # any key's shape
    assert banner_and_rest("a\nDemo account created: x\nkey\n(start with --no-demo ...)\nb") == \
        (["Demo account created: x", "key", "(start with --no-demo ...)"], ["a", "b"])


def test_the_secret_files_are_private_from_their_first_byte(tmp_path):
    """The JWT secret, the demo credentials and the database (with its -wal
    and -shm) are created mode 0600 (for the secrets, under
    strace: the creating openat carries 0600, and no chmod narrows a file
    after it had the secret in it), even under a umask of 0."""
    db, port_file, credentials, trace = (tmp_path / "db.sqlite", tmp_path / "port", tmp_path / "creds.json",
                                         tmp_path / "trace.txt")
    command = ["strace", "-f", "-qq", "-e", "trace=openat,chmod,fchmod,fchmodat,rename", "-o", str(trace),
               str(billing_binary()), "serve", "--listen", "127.0.0.1:0", "--port-file", str(port_file),
               "--db", str(db), "--demo-credentials-file", str(credentials)]
    # umask 0 set by a shell that then execs (no Python between fork and
    # exec: see conftest's `start`).
    process = subprocess.Popen(["sh", "-c", 'umask 0; exec "$@"', "sh", *command], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and credentials.exists()) and time.monotonic() < deadline:
            assert process.poll() is None, "the server exited"
            time.sleep(0.05)
        assert credentials.exists(), "no credentials file within 60 s"
    finally:
        # The server is strace's child: killed, strace follows it out.
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        for child in (children.read_text().split() if children.exists() else []):
            os.kill(int(child), signal.SIGKILL)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    secret = Path(str(db) + ".jwt-secret")
    # The database and its log too (session 28: 0644 under the usual umask,
    # 0666 under this one): accounts' e-mails, cards' last four digits, invoices.
    for path in (secret, credentials, db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path}: {oct(path.stat().st_mode)}"
    calls = trace.read_text()
    for path in (secret, credentials):
        created = [line for line in calls.splitlines() if "openat(" in line and str(path) in line and "O_CREAT" in line]
        assert created, f"no openat creating {path} (or a file beside it):\n{calls[-2000:]}"
        assert all(line.split("O_CREAT", 1)[1].split(")", 1)[0].endswith(", 0600") for line in created), created
        assert not [line for line in calls.splitlines() if "chmod" in line and str(path) in line], "narrowed after creation"


def test_the_database_lock_holds_through_a_symlink(server, tmp_path):
    """One server per database: a second server, or `billing keys create`,
    on the same database through a symlink is refused while it runs."""
    s = server()
    link = tmp_path / "elsewhere.sqlite"
    link.symlink_to(s.db_path)
    for command in (["keys", "create", "--db", str(link), "--name", "x", "--scope", "metering:read"],
                    ["serve", "--db", str(link), "--listen", "127.0.0.1:0", "--no-demo"]):
        result = subprocess.run([str(billing_binary()), *command], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, (command, result.stdout, result.stderr)
        assert "in use by a running billing server" in result.stderr, (command, result.stderr)
    s.assert_serving()


def test_a_hard_linked_database_is_refused(server, tmp_path):
    """A hard link is a second path with its own lock file, and SQLite keeps
    a database's log beside the path it opened: a second server on a hard
    link served the same file from a log of its own (both acknowledged
    debits; one's were lost). A database with more than one link is
    refused, by a second server, by `billing keys`, and at a restart."""
    s = server()
    link = tmp_path / "hard.sqlite"
    os.link(s.db_path, link)
    keys = ["keys", "create", "--name", "x", "--scope", "metering:read", "--db"]
    serve = ["serve", "--listen", "127.0.0.1:0", "--no-demo", "--db"]
    def refused(command):
        result = subprocess.run([str(billing_binary()), *command], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, (command, result.stdout, result.stderr)
        return result.stderr
    assert "has 2 hard links" in refused(serve + [str(link)])
    assert "has 2 hard links" in refused(keys + [str(link)])
    # Reading commands too: on the link they read the file without the
    # server's log (a key just made missing, a revoked one active).
    for reading in (["keys", "list", "--db"], ["verify", "--db"], ["audit", "--db"]):
        assert "has 2 hard links" in refused(reading + [str(link)]), reading
    s.assert_serving()
    s.terminate()
    assert s.wait_exit(10) == 0
    assert "has 2 hard links" in refused(serve + [str(s.db_path)])
    os.unlink(link)
    again = server(db=s.db_path)
    again.assert_serving()


def test_keys_cli_refuses_forging_names_and_whole_keys_and_shows_expiry(pb, server):
    """`billing keys create --name` takes what CreateApiKey takes (a line
    break in a name forged a line of `keys list`); `keys revoke` given a
    whole key refuses it without echoing it; `keys list` tells expired
    keys from active ones."""
    s = server()
    admin = pb.admin_pb2_grpc.AdminStub(s.authorized_channel())
    expires = int(time.time()) + 5  # (room for a slow machine's create call)
    short = admin.CreateApiKey(pb.admin_pb2.CreateApiKeyRequest(name="short-lived", scopes=["metering:read"],
                                                                expires_unix_seconds=expires), timeout=RPC_TIMEOUT_S)
    db = s.db_path
    s.terminate()
    assert s.wait_exit(10) == 0
    time.sleep(max(0.0, expires + 1 - time.time()))  # its expiry passed (a known instant)
    run = lambda *args: subprocess.run([str(billing_binary()), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    forged = run("keys", "create", "--db", str(db), "--name", "evil\nff00ff  active  accounts:admin  root",
                 "--scope", "metering:read")
    assert forged.returncode != 0 and "--name contains" in forged.stderr, forged.stderr
    whole = "bk_0123456789ab_" + "s3cr3t" * 6
    # (Session 26: all but the first were echoed; the last is `Bearer bk_…` pasted unquoted.)
    for pasted_as in ([whole], [f"Bearer {whole}"], [f" {whole}"], [f"'{whole}'"], ["Bearer", whole]):
        pasted = run("keys", "revoke", "--db", str(db), *pasted_as)
        assert pasted.returncode != 0 and "not the whole key" in pasted.stderr, pasted.stderr
        assert "s3cr3t" not in pasted.stderr + pasted.stdout
    missing = run("keys", "revoke", "--db", str(db), "0123456789ab")
    assert missing.returncode != 0 and "no key 0123456789ab" in missing.stderr, missing.stderr
    # A key made offline is journaled, with no checkpoint (whose key filter,
    # of this command's default size, would replace the server's own).
    import sqlite3
    count = lambda: sqlite3.connect(db).execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    checkpoints = count()
    made = run("keys", "create", "--db", str(db), "--name", "offline", "--scope", "metering:read")
    assert made.returncode == 0 and "secret (shown once)" in made.stdout, made.stderr
    assert count() == checkpoints
    listed = run("keys", "list", "--db", str(db))
    assert listed.returncode == 0 and "  active  " in listed.stdout and "ff00ff" not in listed.stdout, listed.stdout
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(short.key.key_id)]
    assert "  expired  " in line and "expires=" in line, line


def test_the_journal_is_synchronous_full_by_default(server):
    """`serve` with no --synchronous commits with PRAGMA synchronous=FULL
    (read back from SQLite, logged at start); --synchronous normal says so."""
    s = server()
    assert re.search(r"synchronous=full .*ledger open", s.log()), s.log_tail()
    t = server(args=["--synchronous", "normal"])
    assert re.search(r"synchronous=normal .*ledger open", t.log()), t.log_tail()


def test_a_log_reader_that_goes_away_does_not_stop_the_server(tmp_path):
    """The log goes to a pipe whose reader then exits (a collector
    restarting): writes fail with EPIPE (SIGPIPE is ignored). The server
    drops those lines and serves on — Foundation's FileHandle.write would
    have trapped at the next line."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    port_file = tmp_path / "port"
    proc = subprocess.Popen([str(billing_binary()), "serve", "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                             "--db", str(tmp_path / "db.sqlite"), "--log-level", "debug", "--no-demo"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for line in proc.stderr:  # bounded by the server's own start-up
            if b"listening" in line:
                break
        proc.stderr.close()  # the reader is gone: every later log line hits EPIPE
        port = int(port_file.read_text())
        for _ in range(20):  # each connection and call logs at debug
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
