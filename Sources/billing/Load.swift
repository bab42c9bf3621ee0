import ArgumentParser
import BillingProto
import Client
import Foundation
import HTTP2
import Histogram
import SwiftProtobuf
import TLS

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive a billing server with a bounded load and report throughput and latency.",
        discussion: """
            Provisions --accounts Pro accounts with credits (needs a key with accounts:admin), then \
            runs the RPC mix on --connections HTTP/2 connections with --streams calls in flight each, \
            for --duration seconds or --requests calls, whichever comes first, as fast as possible \
            or at --rate calls per second. Prints progress once a second and a summary: \
            throughput, latency percentiles (HdrHistogram), errors by status and ErrorInfo reason, \
            and the number of debits the server acknowledged. Loopback or a given host only.
            """)

    @Option(help: "Server address, numeric IPv4 host:port.")
    var target: String = "127.0.0.1:50051"

    @Option(help: "Service key (needs metering:write, metering:read and, for provisioning, accounts:admin). Default: $BILLING_KEY.")
    var key: String?

    @Option(help: "Use TLS, trusting this CA (PEM) for the server certificate.")
    var tlsCa: String?

    @Option(help: "HTTP/2 connections, one thread each.")
    var connections: Int = 4

    @Option(help: "Calls in flight per connection.")
    var streams: Int = 32

    @Option(help: "Stop after this many seconds.")
    var duration: Int = 10

    @Option(help: "Stop after this many calls in all (0: no count bound).")
    var requests: Int = 0

    @Option(help: "Calls per second in all (0: as fast as possible).")
    var rate: Int = 0

    @Option(help: "RPC mix as name:weight pairs from debit, quote, batch, cost, usage.")
    var mix: String = "debit:1"

    @Option(help: "Debits per DebitBatch call.")
    var batchSize: Int = 100

    @Option(help: "Accounts to provision and spread the load over.")
    var accounts: Int = 100

    @Option(help: "Agents per account.")
    var agents: Int = 10

    @Option(help: "Credits granted to each provisioned account, in micro-dollars.")
    var creditsMicros: Int64 = 1_000_000_000_000

    @Flag(help: "Print the summary as JSON (progress lines go to standard error).")
    var json = false

    func validate() throws {
        guard (1...1024).contains(connections) else { throw ValidationError("--connections must be 1...1024") }
        guard (1...1024).contains(streams) else { throw ValidationError("--streams must be 1...1024") }
        guard (1...3600).contains(duration) else { throw ValidationError("--duration must be 1...3600 seconds") }
        guard requests >= 0, rate >= 0 else { throw ValidationError("--requests and --rate must not be negative") }
        guard (1...8192).contains(batchSize) else { throw ValidationError("--batch-size must be 1...8192") }
        guard (1...100_000).contains(accounts), (1...10_000).contains(agents) else { throw ValidationError("--accounts 1...100000, --agents 1...10000") }
        _ = try parsedMix()
        _ = try parsedTarget()
    }

    func parsedTarget() throws -> (String, UInt16) {
        guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else {
            throw ValidationError("--target must be host:port")
        }
        return (String(target[..<colon]), port)
    }

    func parsedMix() throws -> [LoadRPC] {
        var weighted: [LoadRPC] = []
        for part in mix.split(separator: ",") {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            guard let name = pieces.first, let rpc = LoadRPC(rawValue: String(name)), pieces.count <= 2,
                  let weight = pieces.count == 2 ? Int(pieces[1]) : 1, (0...100).contains(weight) else {
                throw ValidationError("--mix takes name:weight pairs from \(LoadRPC.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            weighted += Array(repeating: rpc, count: weight)
        }
        guard !weighted.isEmpty else { throw ValidationError("--mix has no weight") }
        return weighted
    }

    func run() throws {
        guard let key = key ?? ProcessInfo.processInfo.environment["BILLING_KEY"], !key.isEmpty else {
            throw ValidationError("give --key or set BILLING_KEY")
        }
        let (host, port) = try parsedTarget()
        let tls = try tlsCa.map {
            try TLSContext(client: TLSClientConfiguration(serverVerification: .trustCAFile($0), serverName: host))
        }
        let authorization = [HTTP2Header("authorization", "Bearer \(key)")]
        // Unique per run: time plus randomness, so two loads started together do not share keys.
        let runID = "load-\(String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36))-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        let accountIDs = try provision(host: host, port: port, tls: tls, authorization: authorization, runID: runID)

        let started = monotonicNow()
        let plan = LoadPlan(
            host: host, port: port, tls: tls, authorization: authorization, streams: streams, mix: try parsedMix(),
            batchSize: batchSize, accounts: accountIDs, agents: agents, runID: runID,
            deadlineNanos: started + UInt64(duration) * 1_000_000_000,
            intervalNanos: rate == 0 ? 0 : UInt64(connections) * 1_000_000_000 / UInt64(rate))
        // --requests split exactly: the first N % connections connections take one more.
        let workers = (0..<connections).map { index in
            let share = requests == 0 ? Int64.max : Int64(requests / connections + (index < requests % connections ? 1 : 0))
            return LoadWorker(index: index, plan: plan, requests: share)
        }
        let finished = DispatchSemaphore(value: 0)
        let failures = LockedErrors()
        for worker in workers {
            Thread {
                do { try worker.run() } catch { failures.append("connection \(worker.index): \(error)") }
                finished.signal()
            }.start()
        }
        var done = 0
        var lastCompleted: Int64 = 0
        while done < workers.count {
            if finished.wait(timeout: .now() + 1) == .success {
                done += 1
                continue
            }
            let tally = Self.merge(workers)
            let errors = tally.completed - tally.ok
            let line = "progress: \(tally.completed - lastCompleted) calls/s, \(tally.completed) done, \(errors) errors, p99 \(Self.ms(tally.histogram.valueAtPercentile(99)))"
            FileHandle.standardError.write(Data((line + "\n").utf8))
            lastCompleted = tally.completed
        }
        let elapsed = Double(monotonicNow() - started) / 1e9
        let tally = Self.merge(workers)
        let summary = LoadSummary(tally: tally, elapsed: elapsed, failures: failures.all, runID: runID)
        print(json ? summary.json() : summary.text())
        if !failures.all.isEmpty { throw ExitCode(1) }
    }

    /// Creates Pro accounts with credits before the timed phase.
    func provision(host: String, port: UInt16, tls: TLSContext?, authorization: [HTTP2Header], runID: String) throws -> [String] {
        let connection = try GRPCClientConnection(host: host, port: port, tls: tls)
        var ids: [String] = []
        for index in 0..<accounts {
            let id = "\(runID)-a\(index)"
            var create = Billing_V1_CreateAccountRequest()
            create.accountID = id
            create.initialPlan = .pro
            try expectOK(connection.call(path: "/billing.v1.Accounts/CreateAccount", message: create.serializedBytes(),
                                         metadata: authorization), "CreateAccount")
            var grant = Billing_V1_GrantCreditsRequest()
            grant.accountID = id
            grant.amountMicros = creditsMicros
            grant.reason = "billing load"
            grant.idempotencyKey = "\(id)-credits"
            try expectOK(connection.call(path: "/billing.v1.Admin/GrantCredits", message: grant.serializedBytes(),
                                         metadata: authorization), "GrantCredits")
            ids.append(id)
        }
        return ids
    }

    func expectOK(_ completion: GRPCClientConnection.Completion, _ what: String) throws {
        guard completion.status == 0 else {
            throw ValidationError("provisioning failed: \(what) answered \(statusName(completion.status)): \(completion.message)")
        }
    }

    static func merge(_ workers: [LoadWorker]) -> LoadTally {
        var total = LoadTally()
        for worker in workers { total.merge(worker.tally.withLock { $0 }) }
        return total
    }

    static func ms(_ micros: UInt64) -> String {
        String(format: "%.3f ms", Double(micros) / 1000)
    }
}

final class LockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [String] = []
    func append(_ error: String) { lock.lock(); errors.append(error); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return errors }
}

/// The end-of-run report.
struct LoadSummary {
    let tally: LoadTally
    let elapsed: Double
    let failures: [String]
    let runID: String

    var throughput: Double { elapsed > 0 ? Double(tally.completed) / elapsed : 0 }

    func percentile(_ p: Double) -> Double { Double(tally.histogram.valueAtPercentile(p)) / 1000 }

    func text() -> String {
        var lines = [
            "run \(runID): \(tally.completed) calls in \(String(format: "%.2f", elapsed)) s = \(String(format: "%.0f", throughput)) calls/s",
            "latency ms: p50 \(fmt(percentile(50)))  p90 \(fmt(percentile(90)))  p99 \(fmt(percentile(99)))  p99.9 \(fmt(percentile(99.9)))  max \(fmt(Double(tally.histogram.max) / 1000))",
            "debits acknowledged: \(tally.acknowledgedDebits)",
            "abandoned at the time bound: \(tally.abandoned)",
            "outcomes:",
        ]
        for (key, count) in tally.byStatus.sorted(by: { $0.value > $1.value }) { lines.append("  \(key): \(count)") }
        for failure in failures { lines.append("connection failure: \(failure)") }
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        let object: [String: Any] = [
            "run_id": runID, "calls": tally.completed, "ok": tally.ok, "elapsed_seconds": elapsed,
            "calls_per_second": throughput, "debits_acknowledged": tally.acknowledgedDebits, "abandoned": tally.abandoned,
            "latency_ms": ["p50": percentile(50), "p90": percentile(90), "p99": percentile(99), "p99.9": percentile(99.9),
                           "max": Double(tally.histogram.max) / 1000],
            "outcomes": tally.byStatus, "connection_failures": failures,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private func fmt(_ value: Double) -> String { String(format: "%.3f", value) }
}
