import ArgumentParser
import Foundation
import HTTP2
import LoadGenerator
import TLS

/// `billing load`: options and printing; the engine is the LoadGenerator module.
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive a billing server with a bounded load and report throughput and latency.",
        discussion: """
            Provisions --accounts Pro accounts with credits (needs a key with accounts:admin) and, \
            when the mix has cost or usage queries, one debited run per account (metering:write; these debits \
            are not counted in the summary), then \
            runs the RPC mix on --connections HTTP/2 connections with --streams calls in flight each, \
            for --duration seconds or --requests calls, whichever comes first, as fast as possible \
            or at --rate calls per second. Prints progress once a second and a summary: \
            throughput, latency percentiles (HdrHistogram), errors by status and ErrorInfo reason, \
            and the number of debits the server acknowledged. Loopback or a given host only.
            """)

    @Option(help: "Server address, host:port: a host name, an IPv4 address or an [IPv6] one.")
    var target: String = "127.0.0.1:50051"

    @Option(help: "Service key (needs metering:write, metering:read and, for provisioning, accounts:admin). Default: $BILLING_KEY.")
    var key: String?

    @OptionGroup var tls: ClientTLSOptions

    @Option(parsing: .unconditional, help: "HTTP/2 connections, all driven from one thread (as h2load) (1...1024).")
    var connections: Int = 4

    @Option(parsing: .unconditional, help: "Calls in flight per connection (1...1024).")
    var streams: Int = 32

    @Option(parsing: .unconditional, help: "Stop after this many seconds (1...3600).")
    var duration: Int = 10

    @Option(parsing: .unconditional, help: "Stop after this many calls in all (0: no count bound; at least 0).")
    var requests: Int = 0

    @Option(parsing: .unconditional, help: "Calls per second in all (0: as fast as possible; at most 10000000).")
    var rate: Int = 0

    @Option(help: "RPC mix as name:weight pairs (weights 0...100) from debit, quote, batch, cost, usage.")
    var mix: String = "debit:1"

    @Option(parsing: .unconditional, help: "Debits per DebitBatch call (1...8192).")
    var batchSize: Int = 100

    @Option(parsing: .unconditional, help: "Accounts to provision and spread the load over (1...100000).")
    var accounts: Int = 100

    @Option(parsing: .unconditional, help: "Agents per account (1...10000).")
    var agents: Int = 10

    @Option(parsing: .unconditional, help: "Credits granted to each provisioned account, in micro-dollars (1 to 10^12: a grant's largest, $1,000,000).")
    var creditsMicros: Int64 = 1_000_000_000_000

    @Flag(help: "Print the summary as JSON (progress lines go to standard error).")
    var json = false

    @OptionGroup var unknown: UnknownOptions

    func validate() throws {
        guard let key = key ?? ProcessInfo.processInfo.environment["BILLING_KEY"], !key.isEmpty else {
            throw ValidationError("give --key or set BILLING_KEY")
        }
        try requireHeaderSafeToken(key, fromOption: self.key != nil)
        guard (1...1024).contains(connections) else { throw ValidationError("--connections must be 1...1024") }
        guard (1...1024).contains(streams) else { throw ValidationError("--streams must be 1...1024") }
        guard (1...3600).contains(duration) else { throw ValidationError("--duration must be 1...3600 seconds") }
        guard requests >= 0, rate >= 0 else { throw ValidationError("--requests and --rate must not be negative") }
        // Past this the pacer's interval rounds to 0 ns: silently unpaced.
        guard rate <= 10_000_000 else { throw ValidationError("--rate must be at most 10000000 calls/s (0: as fast as possible)") }
        // Each account is granted this much: the Admin API refuses 0 or less, after the first account was created.
        guard (1...1_000_000_000_000).contains(creditsMicros) else {
            throw ValidationError("--credits-micros must be 1...1000000000000")
        }
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
                throw ValidationError("--mix takes name:weight pairs (weights 0...100) from \(LoadRPC.allCases.map(\.rawValue).joined(separator: ", "))")
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
        let tls = try self.tls.context(serverName: host)
        let authorization = [HTTP2Header("authorization", "Bearer \(key)")]
        let runID = LoadKeys.newRunID()
        let accountIDs: [String]
        do {
            accountIDs = try AccountProvisioner(host: host, port: port, tls: tls, authorization: authorization)
                .provision(count: accounts, runID: runID, creditsMicros: creditsMicros,
                           seedRuns: try parsedMix().contains { $0 == .cost || $0 == .usage })
        } catch let refused as ProvisioningError {
            // The server refused (not a usage mistake): an error, exit 1.
            throw CLIError("provisioning the load's accounts failed: \(refused.description)")
        }

        let started = monotonicNow()
        let plan = LoadPlan(
            host: host, port: port, tls: tls, authorization: authorization, streams: streams, mix: try parsedMix(),
            batchSize: batchSize, accounts: accountIDs, agents: agents, runID: runID,
            deadlineNanos: started + UInt64(duration) * 1_000_000_000,
            intervalNanos: Pacer.intervalNanos(rate: rate, connections: connections))
        var lastCompleted: Int64 = 0
        let (tally, failures) = LoadRun(plan: plan, connections: connections, requests: requests).run { tally in
            let errors = tally.completed - tally.ok
            let p99 = String(format: "%.3f ms", Double(tally.latency.p99) / 1000)
            let line = "progress: \(tally.completed - lastCompleted) calls/s, \(tally.completed) done, \(errors) errors, p99 \(p99)"
            FileHandle.standardError.write(Data((line + "\n").utf8))
            lastCompleted = tally.completed
        }
        let elapsed = Double(monotonicNow() - started) / 1e9
        let summary = LoadSummary(tally: tally, elapsed: elapsed, failures: failures, runID: runID)
        print(json ? summary.json() : summary.text())
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
