import ArgumentParser
import BillingService
import Dispatch
import Foundation
import GRPC
import Logging
import Server
import TLS
import Metrics
import Prometheus
import BillingCore
import BillingLedger
import BillingSQLite
import BillingAuth

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the billing gRPC server.",
        discussion: """
            Serves the Metering, Accounts, Payments and Admin services and grpc.health.v1.Health \
            over HTTP/2: cleartext h2c (prior knowledge) by default, TLS with ALPN h2 when \
            --tls-cert and --tls-key are given. SIGTERM, SIGINT or SIGHUP shuts down gracefully: health \
            turns NOT_SERVING, GOAWAY is sent, calls in flight finish (up to --drain-seconds; a second signal ends them at once), \
            then the process exits 0.
            """)

    @Option(help: "Address to listen on, host:port with a numeric IPv4 or [IPv6] host (no names; an empty host, \":50051\", is 0.0.0.0: every interface). Port 0 picks a free port.")
    var listen: String = "127.0.0.1:50051"

    @Option(help: "SQLite database file of the ledger (journal and checkpoints); created if missing.")
    var db: String = "var/billing.sqlite"

    @Option(help: "Price catalog (JSON): model, tool-call and storage rates, with a version.")
    var catalog: String = "config/catalog.json"

    @Option(help: "Plan terms (JSON): prices, run quotas, workspaces, support, integrations, the trial. Journaled at start when they change, so earlier periods keep their terms.")
    var plans: String = "config/plans.json"

    @Option(help: "The seller printed on invoice PDFs (JSON: a name and up to 8 lines of address and contact, printing whole: each wraps to at most 4 lines of ~30-35 characters, 12 in all, Windows-1252 characters). The shipped file is a placeholder to replace.")
    var seller: String = "config/seller.json"

    @Option(help: "SQLite synchronous mode of the journal: full (an acknowledged debit survives power loss) or normal (survives a process crash, not power loss).")
    var synchronous: SynchronousOption = .full

    @Option(parsing: .unconditional, help: "Write a checkpoint of the ledger every this many journal entries (1 to 1,000,000,000). The debits since the last two checkpoints are kept in memory for idempotent retries; older ones are read from SQLite.")
    var checkpointEvery: Int = 100_000

    @Option(parsing: .unconditional, help: "Journal entries waiting for their commit at most (1 to 16777216); past it changes are refused RESOURCE_EXHAUSTED, reason LEDGER_OVERLOADED, instead of queueing without bound: a debit with nothing recorded (its key free for the retry); a payment or plan change may have started its charge already (retry it with the same idempotency key). A DebitBatch holding more debits than this has the ones past it refused so.")
    var maxQueuedEntries: Int = LedgerConfiguration().maxQueued

    @Option(parsing: .unconditional, help: "Memory for the filter that tells a new idempotency key from a seen one without reading SQLite, in MiB, 1 to 4096 (a power of two is used; 16: ~0.3% needless reads at 10 million keys).")
    var keyFilterMib: Int = 16

    @Option(help: "PEM certificate chain; with --tls-key, serve TLS 1.2+/1.3 with ALPN h2.")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(help: "PEM CA bundle; when set, clients must present a certificate chaining to a root CA in it (mTLS: an intermediate alone is not a trust anchor; revocation lists are not checked).")
    var tlsClientCa: String?

    @Option(parsing: .unconditional, help: "Event-loop threads, 1...256 (default: one per core, at most 256).")
    var threads: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(parsing: .unconditional, help: "Largest request message accepted, in bytes (1 to 67108864); larger ones get RESOURCE_EXHAUSTED.")
    var maxMessageBytes: Int = 4 << 20

    @Option(parsing: .unconditional, help: "Most open connections (1 to 1000000); more are closed at accept. The open-file limit is raised to its hard limit at start (a warning if that allows fewer); out of descriptors, accepting pauses 100 ms at a time.")
    var maxConnections: Int = 10_000

    @Option(parsing: .unconditional, help: "Close connections idle (no call in progress) this many seconds (1...604800).")
    var idleTimeoutSeconds: Int = 300

    @Option(parsing: .unconditional, help: "End a call whose request message has not fully arrived this many seconds after its headers (1...86400).")
    var requestTimeoutSeconds: Int = 30

    @Option(parsing: .unconditional, help: "End a call still running this many seconds after its headers, whatever its grpc-timeout (1...86400): DEADLINE_EXCEEDED, reason CALL_TIMEOUT.")
    var maxCallSeconds: Int = 300

    @Option(parsing: .unconditional, help: "MiB of request bytes buffered across all connections; the connection passing it is closed (1...1048576).")
    var maxBufferedRequestMib: Int = 1024

    @Option(parsing: .unconditional, help: "MiB of answers queued for clients that do not read them (flow-control windows kept shut), across all connections, and per connection at most 64; past it an answer is refused, RESOURCE_EXHAUSTED RESPONSES_NOT_READ (1...1048576).")
    var maxHeldResponseMib: Int = 1024

    @Option(parsing: .unconditional, help: "On SIGTERM/SIGINT/SIGHUP, let calls in flight finish for up to this many seconds (0...3600).")
    var drainSeconds: Int = 10

    @Option(help: "Serve Prometheus metrics (HTTP/1.1 GET /metrics) on this host:port; off when not given.")
    var metricsListen: String?

    @Option(help: "Write the bound port to this file once listening (for scripts and tests).")
    var portFile: String?

    @Flag(help: "Do not create the demo account, key and token on a fresh database (production).")
    var noDemo = false

    @Option(help: "Write the demo service key and Owner token as JSON (mode 0600) to this file when they are created.")
    var demoCredentialsFile: String?

    @Option(help: "File holding the platform's HMAC-SHA256 secret for user JWTs (at least 32 bytes); a file given here must exist. Default: <db>.jwt-secret, generated on a fresh database unless --no-demo. Without a secret, user tokens are refused.")
    var jwtSecretFile: String?

    @Option(help: "Required `iss` claim of user JWTs.")
    var jwtIssuer: String = "platform"

    @Option(help: "Required `aud` claim of user JWTs.")
    var jwtAudience: String = "billing"

    @Flag(help: "Run on a test clock: it starts at the real time and moves only through Admin AdvanceClock, which processes every due trial end, period end and grace end in order (API keys and user tokens still expire on the real clock). For tests and demos, never production.")
    var testClock = false

    @Option(parsing: .unconditional, help: "Credits a new account's trial starts with, in micro-dollars (0 to 1000000000000; default $10).")
    var trialCreditMicros: Int64 = 10_000_000

    @Option(parsing: .unconditional, help: "Days runs continue after a failed invoice payment before they pause (0 to 365).")
    var graceDays: Int = 7

    @Flag(help: "Register billing.v1.Testing (Echo with a delay) for transport tests. Never in production.")
    var enableTestingService = false

    @OptionGroup var unknown: UnknownOptions

    func validate() throws {
        // A key or token pasted as a file name: `--port-file` and
        // `--demo-credentials-file` made a file named after it, and a
        // notice logged it (session 31, a review); `--db` is refused so by
        // `DatabaseLock`.
        let paths = [("--catalog", catalog), ("--plans", plans), ("--seller", seller), ("--tls-cert", tlsCert),
                     ("--tls-key", tlsKey), ("--tls-client-ca", tlsClientCa), ("--port-file", portFile),
                     ("--demo-credentials-file", demoCredentialsFile), ("--jwt-secret-file", jwtSecretFile)]
        if let (option, _) = paths.first(where: { $0.1.map(looksSecret) ?? false }) {
            throw ValidationError("\(option) holds an API key or a user token (not shown): name a file")
        }
        // The files are read here too, not only in `run`: ArgumentParser
        // then reports a bad one with this command's usage.
        _ = try loadCatalog(catalog)
        _ = try loadPlans(plans)
        _ = try loadSeller(seller)
        // A secret file the operator names must exist and be long enough;
        // read here, before the database is touched (recovery or catch-up
        // can close periods and charge cards), and again by `run`.
        if let jwtSecretFile {
            do {
                guard try loadJWTSecret(path: jwtSecretFile, createIfMissing: false) != nil else {
                    throw ValidationError("--jwt-secret-file \(jwtSecretFile) cannot be read (it is read, never created)")
                }
            } catch let error as CLIError {
                throw ValidationError(error.description)
            }
        }
        if (tlsCert == nil) != (tlsKey == nil) {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        if tlsClientCa != nil && tlsCert == nil {
            throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key")
        }
        guard let address = SocketAddress(parsing: listen), address.isNumeric else {
            throw ValidationError("--listen must be host:port with a numeric host, e.g. 127.0.0.1:50051 or [::1]:50051 (no host names)")
        }
        if let threads { guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1...256") } }
        guard maxMessageBytes > 0 && maxMessageBytes <= 64 << 20 else {
            throw ValidationError("--max-message-bytes must be 1...\(64 << 20)")
        }
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be 1...1000000") }
        guard (1...604_800).contains(idleTimeoutSeconds) else {
            throw ValidationError("--idle-timeout-seconds must be 1...604800")
        }
        guard (0...3_600).contains(drainSeconds) else { throw ValidationError("--drain-seconds must be 0...3600") }
        if noDemo && demoCredentialsFile != nil {
            throw ValidationError("--demo-credentials-file has nothing to write with --no-demo")
        }
        guard (1...1 << 20).contains(maxBufferedRequestMib) else {
            throw ValidationError("--max-buffered-request-mib must be 1...\(1 << 20)")
        }
        guard (1...1 << 20).contains(maxHeldResponseMib) else {
            throw ValidationError("--max-held-response-mib must be 1...\(1 << 20)")
        }
        // One largest message must fit, or a valid request would close its
        // connection (ENHANCE_YOUR_CALM) instead of being served.
        guard maxBufferedRequestMib << 20 >= maxMessageBytes + 5 else {
            throw ValidationError("--max-buffered-request-mib must hold at least one largest message (--max-message-bytes \(maxMessageBytes) and its 5-byte prefix)")
        }
        guard (1...86_400).contains(requestTimeoutSeconds) else {
            throw ValidationError("--request-timeout-seconds must be 1...86400")
        }
        guard (1...86_400).contains(maxCallSeconds) else {
            throw ValidationError("--max-call-seconds must be 1...86400")
        }
        guard drainSeconds >= 0 else { throw ValidationError("--drain-seconds must not be negative") }
        guard (1...LedgerConfiguration.maxCheckpointEvery).contains(checkpointEvery) else {
            throw ValidationError("--checkpoint-every must be 1...\(LedgerConfiguration.maxCheckpointEvery)")
        }
        guard (1...4096).contains(keyFilterMib) else { throw ValidationError("--key-filter-mib must be 1...4096") }
        guard (1...16_777_216).contains(maxQueuedEntries) else { throw ValidationError("--max-queued-entries must be 1...16777216") }
        guard (0...1_000_000_000_000).contains(trialCreditMicros) else {
            throw ValidationError("--trial-credit-micros must be 0...1000000000000 ($1,000,000)")
        }
        guard (0...365).contains(graceDays) else { throw ValidationError("--grace-days must be 0...365") }
        if let metricsListen {
            guard let metrics = SocketAddress(parsing: metricsListen), metrics.isNumeric else {
                throw ValidationError("--metrics-listen must be host:port with a numeric host, e.g. 127.0.0.1:9090 (no host names)")
            }
            // The same port on the same address, or on a wildcard covering
            // the other: the second bind would fail after recovery.
            if metrics.bindsOverlap(with: address) {
                throw ValidationError("--metrics-listen \(metricsListen) would bind the port of --listen \(listen); give it a port of its own")
            }
        }
        // Files written once the server runs: their directories must exist
        // and be writable now, not be found wanting after the demo account
        // was created and the loops started.
        for (option, path) in [("--port-file", portFile), ("--demo-credentials-file", demoCredentialsFile)] {
            guard let path else { continue }
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
                  FileManager.default.isWritableFile(atPath: directory) else {
                throw ValidationError("\(option) \(path): its directory \(directory) does not exist or is not writable")
            }
            // (Replaced whole by a rename: an existing one must be a file.)
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw ValidationError("\(option) \(path) is a directory; name a file")
            }
        }
    }

    func run() throws {
        // Block SIGTERM/SIGINT/SIGHUP before any thread starts, so every thread
        // inherits the mask and a signal stays pending until sigwait takes it:
        // none is lost or kills the process, however early it arrives.
        var shutdownSignals = sigset_t()
        sigemptyset(&shutdownSignals)
        sigaddset(&shutdownSignals, SIGTERM)
        sigaddset(&shutdownSignals, SIGINT)
        // A closed terminal (a foreground `serve.sh`) drains too, where it
        // killed the server outright (session 28) — unless SIGHUP is
        // ignored already (`nohup`): a blocked signal is still queued for
        // sigwait, and a logout would then stop a server meant to outlive it.
        var hangUp = sigaction()
        let ignored = unsafeBitCast(SIG_IGN, to: Int.self)
        if sigaction(SIGHUP, nil, &hangUp) == 0,
           hangUp.__sigaction_handler.sa_handler.map({ unsafeBitCast($0, to: Int.self) }) != ignored {
            sigaddset(&shutdownSignals, SIGHUP)
        }
        pthread_sigmask(SIG_BLOCK, &shutdownSignals, nil)
        // Sockets are written with MSG_NOSIGNAL; ignoring SIGPIPE as well keeps
        // any other write to a closed peer (a library's) from killing the server.
        signal(SIGPIPE, SIG_IGN)
        bootstrapLogging(level: logLevel)
        // (Checked by `validate` too; read again here, before the database.)
        let namedJWTSecret = try jwtSecretFile.map { path in
            guard let secret = try loadJWTSecret(path: path, createIfMissing: false) else {
                throw CLIError("--jwt-secret-file \(path) cannot be read (it is read, never created)")
            }
            return secret
        }
        let logger = Logger(label: "billing")
        let registry = PrometheusCollectorRegistry()
        if metricsListen != nil {
            var factory = PrometheusMetricsFactory(registry: registry)
            // Latency buckets from 100 µs: a metering call takes ~1-3 ms and
            // a journal commit well under 1 ms, all in the library's lowest
            // default bucket (5 ms), where no quantile could be read.
            factory.defaultDurationHistogramBuckets = Self.latencyBuckets
            MetricsSystem.bootstrap(factory)
        }

        let threads = self.threads ?? min(ProcessInfo.processInfo.activeProcessorCount, 256)
        var configuration = ServerConfiguration(listen: SocketAddress(parsing: listen)!, threads: threads)
        if let tlsCert, let tlsKey {
            let tls = try TLSContext(server: TLSServerConfiguration(
                certificate: TLSCertificateFiles(chainFile: tlsCert, privateKeyFile: tlsKey),
                clientCAFile: tlsClientCa))
            configuration.tls = tls
            Self.logCertificateValidity(tls, file: tlsCert, logger: logger)
        }
        configuration.maxConnections = maxConnections
        Self.raiseDescriptorLimit(for: maxConnections, logger: logger)
        configuration.idleTimeoutNanos = UInt64(idleTimeoutSeconds) * 1_000_000_000
        configuration.requestTimeoutNanos = UInt64(requestTimeoutSeconds) * 1_000_000_000
        configuration.grpc.maxCallNanos = UInt64(maxCallSeconds) * 1_000_000_000
        configuration.grpc.requestBuffer = BufferBudget(limit: maxBufferedRequestMib << 20)
        configuration.grpc.responseBuffer = BufferBudget(limit: maxHeldResponseMib << 20)
        configuration.grpc.maxHeldResponseBytes = min(configuration.grpc.maxHeldResponseBytes, maxHeldResponseMib << 20)
        configuration.grpc.maxReceiveMessageSize = maxMessageBytes
        // A connection may buffer two largest messages (64 MiB at the default 4 MiB).
        configuration.grpc.maxBufferedRequestBytes = max(configuration.grpc.maxBufferedRequestBytes, 2 * (maxMessageBytes + 5))
        let callMetrics = GRPCServerMetrics(knownPaths: Set(BillingServices.allPaths + ["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/List", "/billing.v1.Testing/Echo"]),
                                            refusalsLabel: RefusalMetrics.label)
        if metricsListen != nil { configuration.grpc.metrics = callMetrics }

        let prices = try loadCatalog(catalog)
        let planTerms = try loadPlans(plans)
        let sellerParty = try loadSeller(seller)  // (before the database, as the plans)
        // The database gone but its lock file says a ledger was opened there:
        // moved or deleted, and a new, empty ledger here would serve as if
        // nothing had been billed. Refused; the operator restores it, or
        // removes the lock to start afresh.
        try DatabaseLock.requireNotMovedAway(db)
        let lock = try DatabaseLock(database: db)
        defer { _ = lock }
        let store = try SQLiteLedgerStore(path: db, synchronous: synchronous.mode, owner: true)
        lock.markOpened()
        // SQLite in WAL mode writes on to a database file deleted, renamed or
        // replaced under it (commits acknowledged into a file no one will
        // open again): checked every second; the server stops at once.
        let fileWatch = Task {
            while !Task.isCancelled {
                if store.fileHasMoved() {
                    Self.stopForStorage(logger, "the database file was deleted, renamed or replaced under the running server; stopping (what it acknowledged is in the file it had open)",
                                        metadata: ["db": "\(db)"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        defer { fileWatch.cancel() }
        var ledgerConfiguration = LedgerConfiguration()
        ledgerConfiguration.checkpointEvery = checkpointEvery
        ledgerConfiguration.keyFilterBytes = keyFilterMib << 20
        ledgerConfiguration.maxQueued = maxQueuedEntries
        ledgerConfiguration.trialCreditMicros = trialCreditMicros
        ledgerConfiguration.graceSeconds = Int64(graceDays) * 86_400
        // A write or sync the disk reported failed: what the journal holds is
        // known again only when SQLite reopens it. Exit (EX_IOERR) rather
        // than go on from a view of the journal that may not be the disk's;
        // the next start recovers from what is there.
        ledgerConfiguration.onDiskStateUnknown = { [logger] reason in
            Self.stopForStorage(logger, "the disk failed a journal write or sync; stopping so that recovery at the next start reads what it holds",
                                metadata: ["error": "\(reason)"])
        }
        let clock: any LedgerClock = testClock ? TestClock(startMicros: SystemClock().nowMicros()) : SystemClock()
        // The loops run from here on, serving nothing until `start`: the
        // ledger actor runs on the first one.
        let server = try GRPCServer(configuration: configuration, logger: logger)
        let ledger = try Ledger(store: store, plans: .default, clock: clock,
                                configuration: ledgerConfiguration, logger: logger,
                                executor: LoopLedgerExecutor(loop: server.firstLoop))
        for skipped in store.takeSkippedCheckpoints() {
            logger.error("an unreadable checkpoint was passed over; recovery used an older one or the journal", metadata: ["checkpoint": "\(skipped)"])
        }
        if testClock { logger.warning("running on a test clock: time moves only through Admin AdvanceClock") }
        // A database whose test clock was moved ahead of real time, served on
        // the real clock, would run time backwards (trials longer, periods
        // starting after their accounts' creation): refused, not guessed.
        // (Only a clock AdvanceClock moved: on the real clock the position
        // is the newest lifecycle entry's time, ahead of now only after the
        // system clock was set back, which the ledger rides out.)
        let (moved, movedTo) = try blockingAwait { (await ledger.testClockMoved, await ledger.testClockUnix) }
        if !testClock, moved, movedTo > SystemClock().nowMicros() / 1_000_000 + 60 {
            _ = try? blockingAwait { await ledger.close() }
            throw CLIError("this database's clock was moved to \(Date(timeIntervalSince1970: TimeInterval(movedTo))) by Admin AdvanceClock (a test clock): serve it with --test-clock")
        }
        // Every address bound, and the catalog checked, before anything is
        // journaled: a start that cannot serve (a port taken, prices changed
        // under their version) leaves the database as it found it (session
        // 28: due transitions were caught up — periods closed, cards charged
        // — and plan terms journaled by a server that then never listened,
        // once per try of a process manager's restart loop). Connections
        // wait in the kernel's queue until the server starts.
        let metrics: MetricsEndpoint?
        let registration: SQLiteLedgerStore.CatalogRegistration
        do {
            do { try server.bind() } catch { throw CLIError("--listen \(listen): \(error)") }
            do {
                metrics = try metricsListen.map { try MetricsEndpoint(listen: SocketAddress(parsing: $0)!, logger: logger) }
            } catch {
                throw CLIError("--metrics-listen \(metricsListen ?? ""): \(error)")
            }
            // A version names one set of prices: every debit records it, and
            // a trace shows it. Served again with other prices, two debits of
            // one version would be priced differently: refused, before any
            // debit. Forgotten if serving cannot start (no debit was priced
            // with it).
            registration = try store.registerCatalog(version: prices.version, digest: prices.contentDigest,
                                                     nowUnix: SystemClock().nowMicros() / 1_000_000)
            guard registration != .conflict else {
                throw CLIError("price catalog version \(prices.version) was served before with other prices; give the changed prices a new version in \(catalog)")
            }
        } catch {
            _ = try? blockingAwait { await ledger.close() }
            throw error
        }
        // Forgotten again if the start fails from here to serving, whatever
        // fails (session 28's diff review: a bad JWT secret file left it
        // recorded, and corrected prices were refused at the next start).
        var serving = false
        defer {
            if !serving, registration == .registered { try? store.forgetCatalog(version: prices.version) }
        }
        // Period ends, trial ends and grace ends that passed while the server
        // was down, and payments a crash interrupted, before the first call;
        // then the plan terms and grace of this start (the grace for every
        // account, not only those created from now on).
        let grace = ledgerConfiguration.graceSeconds
        let (caughtUp, _, plansChanged) = try blockingAwait {
            try await ledger.start(plans: planTerms, graceSeconds: grace, actor: "serve --plans --grace-days")
        }
        if caughtUp > 0 {
            logger.notice("processed transitions due while stopped", metadata: ["count": "\(caughtUp)"])
        }
        if plansChanged {
            logger.notice("plan terms or grace changed; journaled", metadata: ["plans": "\(plans)", "grace_days": "\(graceDays)"])
        }
        let ticker = testClock ? nil : Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                do {
                    for transition in try await ledger.tick() {
                        logger.info("billing transition", metadata: [
                            "account_id": "\(transition.accountID)", "kind": "\(transition.kind)", "at": "\(transition.at)"])
                    }
                } catch is CancellationError {
                    break  // the server is stopping
                } catch {
                    logger.error("billing transitions failed; retrying in a second", metadata: ["error": "\(error)"])
                }
            }
        }
        logger.info("ledger open", metadata: ["db": "\(db)", "synchronous": "\(store.synchronousInEffect)", "catalog_version": "\(prices.version)"])

        // Fresh for the demo (`DemoProvisioning.isFresh`): a first start
        // stopped part-way through making the demo — its account made, its
        // key not — is made whole by the next, instead of never showing
        // credentials.
        let fresh = try blockingAwait { await DemoProvisioning.isFresh(ledger) }
        // Only the default path is generated: a file named by the operator
        // that is missing is a mistake, not a request for a new secret.
        let jwtSecret = try namedJWTSecret ?? loadJWTSecret(path: db + ".jwt-secret", createIfMissing: fresh && !noDemo)
        if jwtSecret == nil {
            logger.warning("no JWT secret configured: user tokens are refused (set --jwt-secret-file)")
        }
        // A production start with no key to call it with: say how to make one
        // (`billing keys create` refuses while the server holds the database).
        let now = ledger.currentUnix
        if noDemo, !ledger.keyRing.all.contains(where: { $0.revokedUnix == 0 && ($0.expiresUnix == 0 || $0.expiresUnix > now) }) {
            logger.notice("no active API key: no service can call this server yet; stop it and run `billing keys create --db \(db) --name NAME --scope accounts:admin` (it makes the database if it is missing), then start it again")
        }
        let authenticator = Authenticator(
            keyRing: ledger.keyRing,
            jwt: jwtSecret.map { JWTVerifier(secret: $0, issuer: jwtIssuer, audience: jwtAudience) },
            clock: SystemClock())

        var router = GRPCRouter()
        // NOT_SERVING while the ledger cannot write (from a failed commit
        // until the reload after it succeeds), asked at each check.
        let health = HealthService(services: BillingServices.names, available: { ledger.isServing })
        health.register(into: &router)
        BillingServices.register(into: &router, ledger: ledger, catalog: prices, authenticator: authenticator,
                                 seller: sellerParty)
        if enableTestingService {
            TestingService.register(into: &router)
            logger.warning("billing.v1.Testing is enabled: for transport tests only")
        }

        try server.start(router: router)
        serving = true
        if let metrics {
            // (SQLite keeps the WAL beside the file, links resolved.)
            let gauges = ServerGauges(registry: registry, recoveryMillis: ledger.recoveryMillis, wal: DatabaseLock.resolved(db) + "-wal")
            metrics.start {
                gauges.update(server: server, calls: callMetrics, ledger: ledger)
                return registry.emitToBuffer()
            }
            logger.info("metrics", metadata: ["address": "\(metrics.boundAddress)", "path": "/metrics"])
        }
        // The demo account and key once every address is bound (the metrics
        // one too): a start that fails before (a port taken) leaves the
        // database fresh, and the next start creates and prints them (made
        // first, they were made and never shown, and no later start would
        // show them). Printed at once, before the port file says "ready".
        var demo: DemoCredentials?
        if fresh && !noDemo {
            demo = try DemoCredentials.create(ledger: ledger, jwtSecret: jwtSecret, issuer: jwtIssuer, audience: jwtAudience)
            // (Before the file: a write that fails has not hidden them.)
            demo?.printHelp(server.boundAddress, tls: tlsCert == nil ? nil : tlsClientCa == nil ? .serverOnly : .clientCertificate)
            if let demoCredentialsFile { try demo?.write(to: demoCredentialsFile) }
        } else if let demoCredentialsFile {
            logger.notice("the database is not fresh: no demo credentials created, nothing written",
                          metadata: ["demo_credentials_file": "\(demoCredentialsFile)"])
        }
        if let portFile {
            do {
                try "\(server.boundAddress.port)\n".write(toFile: portFile, atomically: true, encoding: .utf8)
            } catch {
                throw CLIError("--port-file \(portFile): cannot write it (\(error.localizedDescription))")
            }
        }
        logger.info("listening", metadata: [
            "address": "\(server.boundAddress)",
            "transport": "\(tlsCert == nil ? "h2c" : "tls")",
            "threads": "\(threads)",
            "allocator": "\(Allocator.describe())",
        ])

        let drainNanos = UInt64(drainSeconds) * 1_000_000_000
        let signalSet = shutdownSignals
        let waiter = Thread {
            var set = signalSet
            var number: Int32 = 0
            sigwait(&set, &number)
            logger.info("shutting down", metadata: ["signal": "\(number)", "drain_seconds": "\(drainSeconds)"])
            health.beginDrain()
            server.shutdown(drainNanos: drainNanos)
            // A second signal: the operator will not wait out the drain. What
            // was acknowledged is durable already; calls in flight end with
            // their connections (a debit among them is settled by GetDebit).
            sigwait(&set, &number)
            logger.warning("second signal: closing every connection now, calls in flight with them", metadata: ["signal": "\(number)"])
            server.endDrainNow()
        }
        waiter.name = "billing-signals"
        waiter.start()
        server.wait()
        ticker?.cancel()
        try blockingAwait { await ledger.close() }
        store.close()
        logger.info("stopped")
    }
}

extension Serve {
    /// Descriptors the server needs beside its connections: the database
    /// and its WAL and locks, the reader pool, epoll and wake descriptors,
    /// the listening and metrics sockets, TLS files.
    static let reservedDescriptors = 256

    /// Duration histogram buckets of /metrics (calls, journal commits).
    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    /// Days before its end from which the server certificate's expiry is a
    /// warning at start.
    static let certificateWarningDays: Int64 = 14

    /// The server certificate's expiry, at start: info, or a warning when it
    /// is not valid now (clients refuse it) or ends within
    /// `certificateWarningDays` (it is read once: a renewed one takes a restart).
    static func logCertificateValidity(_ tls: TLSContext, file: String, logger: Logger) {
        guard let validity = tls.certificateValidity else { return }
        let now = Int64(Date().timeIntervalSince1970)
        let metadata: Logger.Metadata = [
            "certificate": "\(file)",
            "not_before": "\(CivilDate(unixSeconds: validity.notBefore))",
            "not_after": "\(CivilDate(unixSeconds: validity.notAfter))",
        ]
        if now < validity.notBefore || now >= validity.notAfter {
            logger.warning("the TLS certificate is not valid now: clients will refuse it", metadata: metadata)
        } else if validity.notAfter - now < certificateWarningDays * 86_400 {
            logger.warning("the TLS certificate expires soon; it is read at start: renew it, then restart", metadata: metadata)
        } else {
            logger.info("TLS certificate", metadata: metadata)
        }
    }

    /// Raises the soft limit on open files to the hard one (Debian's soft
    /// default, 1,024, is a tenth of the default --max-connections), and
    /// warns when even that is short of --max-connections: past it the
    /// loops pause accepting (100 ms at a time) rather than spin.
    /// Storage the server can no longer vouch for: logged `critical`, then
    /// exit 74 (EX_IOERR) at once, for recovery at the next start to decide.
    /// Not exit(): its atexit handlers (OpenSSL's cleanup) would run under
    /// event loops still serving. Output streams (the demo credentials) are
    /// flushed; the log goes to unbuffered stderr.
    static func stopForStorage(_ logger: Logger, _ message: Logger.Message, metadata: Logger.Metadata) -> Never {
        logger.critical(message, metadata: metadata)
        fflush(nil)
        _exit(74)
    }

    static func raiseDescriptorLimit(for maxConnections: Int, logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let usable = Int(clamping: limit.rlim_cur) - reservedDescriptors
        if usable < maxConnections {
            logger.warning("the open-file limit allows fewer connections than --max-connections; past it, accepting pauses",
                           metadata: ["open_file_limit": "\(limit.rlim_cur)", "max_connections": "\(maxConnections)",
                                      "connections_possible": "\(max(usable, 0))"])
        }
    }
}
