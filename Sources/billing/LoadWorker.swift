import BillingProto
import Client
import Foundation
import GRPC
import HTTP2
import Histogram
import Synchronization
import TLS

/// The RPCs `billing load` can drive.
enum LoadRPC: String, CaseIterable, Sendable {
    case debit, quote, batch, cost, usage

    var path: String {
        switch self {
        case .debit: "/billing.v1.Metering/Debit"
        case .quote: "/billing.v1.Metering/Quote"
        case .batch: "/billing.v1.Metering/DebitBatch"
        case .cost: "/billing.v1.Metering/GetExecutionCost"
        case .usage: "/billing.v1.Metering/GetUsage"
        }
    }
}

/// What one connection's worker counted; merged at the end.
struct LoadTally: Sendable {
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var completed: Int64 = 0
    var ok: Int64 = 0
    /// Debits the server acknowledged as accepted (Debit OK + accepted batch results).
    var acknowledgedDebits: Int64 = 0
    var byStatus: [String: Int64] = [:]
    /// Calls still unanswered when the time bound (plus grace) ran out.
    var abandoned: Int64 = 0

    mutating func merge(_ other: LoadTally) {
        histogram.add(other.histogram)
        completed += other.completed
        ok += other.ok
        acknowledgedDebits += other.acknowledgedDebits
        abandoned += other.abandoned
        for (key, count) in other.byStatus { byStatus[key, default: 0] += count }
    }
}

/// Settings shared by every worker.
struct LoadPlan: Sendable {
    let host: String
    let port: UInt16
    let tls: TLSContext?
    let authorization: [HTTP2Header]
    let streams: Int
    let mix: [LoadRPC]
    let batchSize: Int
    let accounts: [String]
    let agents: Int
    let runID: String
    let deadlineNanos: UInt64
    /// Nanoseconds between sends on one connection; 0 = as fast as possible.
    let intervalNanos: UInt64
}

/// One connection driven by one thread: keeps `streams` calls in flight
/// (or paces them at the asked rate), records each call's latency.
final class LoadWorker: @unchecked Sendable {
    let index: Int
    let plan: LoadPlan
    /// Calls this connection sends at most.
    let requests: Int64
    let tally = Mutex(LoadTally())
    let stopRequested = Atomic<Bool>(false)
    private var rng: SplitMix64
    private var sequence: Int64 = 0
    /// The newest run debited per account, for GetExecutionCost calls.
    private var lastRun: [String: String] = [:]

    /// Calls still in flight this long after the time bound are abandoned:
    /// a stalled server cannot keep the tool running.
    static let graceNanos: UInt64 = 2_000_000_000

    init(index: Int, plan: LoadPlan, requests: Int64) {
        self.index = index
        self.plan = plan
        self.requests = requests
        self.rng = SplitMix64(seed: UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
    }

    func run() throws {
        let connection = try GRPCClientConnection(host: plan.host, port: plan.port, tls: plan.tls)
        var inflight: [Int32: (rpc: LoadRPC, started: UInt64, debits: Int)] = [:]
        var sent: Int64 = 0
        var nextSend = monotonicNow()
        while true {
            let now = monotonicNow()
            let timeUp = now >= plan.deadlineNanos || stopRequested.load(ordering: .relaxed)
            if (timeUp || sent >= requests) && inflight.isEmpty { break }
            if now >= plan.deadlineNanos + Self.graceNanos {
                let unanswered = Int64(inflight.count)
                tally.withLock { $0.abandoned += unanswered }
                break
            }
            while !timeUp && sent < requests && inflight.count < plan.streams
                    && (plan.intervalNanos == 0 || monotonicNow() >= nextSend) {
                let rpc = plan.mix[Int(rng.next() % UInt64(plan.mix.count))]
                let (message, debits) = try request(rpc)
                let id = try connection.start(path: rpc.path, message: message, metadata: plan.authorization)
                inflight[id] = (rpc, monotonicNow(), debits)
                sent += 1
                if plan.intervalNanos > 0 { nextSend += plan.intervalNanos }
            }
            try connection.flush()
            let wait: Int32 = plan.intervalNanos > 0 ? 1 : 50
            for done in try connection.poll(timeoutMillis: wait) {
                guard let call = inflight.removeValue(forKey: done.streamID) else { continue }
                record(done, call: call, finished: monotonicNow())
            }
        }
    }

    private func record(_ done: GRPCClientConnection.Completion, call: (rpc: LoadRPC, started: UInt64, debits: Int),
                        finished: UInt64) {
        var acknowledged: Int64 = 0
        if done.status == 0 {
            switch call.rpc {
            case .debit: acknowledged = 1
            case .batch:
                if let response = try? Billing_V1_DebitBatchResponse(serializedBytes: done.response) {
                    acknowledged = Int64(response.results.filter { $0.accepted.entryID > 0 }.count)
                }
            default: break
            }
        }
        let key = done.status == 0 ? "OK" : "\(statusName(done.status))\(reason(done.details).map { " " + $0 } ?? "")"
        tally.withLock { tally in
            _ = tally.histogram.record((finished - call.started) / 1000)
            tally.completed += 1
            if done.status == 0 { tally.ok += 1 }
            tally.acknowledgedDebits += acknowledged
            tally.byStatus[key, default: 0] += 1
        }
    }

    private func request(_ rpc: LoadRPC) throws -> ([UInt8], Int) {
        let account = plan.accounts[Int(rng.next() % UInt64(plan.accounts.count))]
        switch rpc {
        case .debit:
            return (try debit(account).serializedBytes(), 1)
        case .quote:
            var quote = Billing_V1_QuoteRequest()
            quote.accountID = account
            quote.workspaceID = "w1"
            quote.agentID = "agent-\(rng.next() % UInt64(plan.agents))"
            quote.lineItems = lineItems()
            return (try quote.serializedBytes(), 0)
        case .batch:
            var batch = Billing_V1_DebitBatchRequest()
            batch.debits = (0..<plan.batchSize).map { _ in debit(account) }
            return (try batch.serializedBytes(), plan.batchSize)
        case .cost:
            // A run this connection debited, with the account it belongs to.
            var cost = Billing_V1_GetExecutionCostRequest()
            if let run = lastRun[account] {
                (cost.accountID, cost.runID) = (account, run)
            } else if let (owner, run) = lastRun.first {
                (cost.accountID, cost.runID) = (owner, run)
            } else {
                (cost.accountID, cost.runID) = (account, "\(plan.runID)-none")
            }
            return (try cost.serializedBytes(), 0)
        case .usage:
            var usage = Billing_V1_GetUsageRequest()
            usage.accountID = account
            usage.groupBy = [.day, .lineItem]
            return (try usage.serializedBytes(), 0)
        }
    }

    /// A debit with a key unique across connections and runs of the tool.
    private func debit(_ account: String) -> Billing_V1_DebitRequest {
        sequence += 1
        var debit = Billing_V1_DebitRequest()
        debit.accountID = account
        debit.workspaceID = "w1"
        debit.agentID = "agent-\(rng.next() % UInt64(plan.agents))"
        debit.runID = "\(plan.runID)-c\(index)-r\(sequence / 4)"  // four debits per run
        debit.idempotencyKey = LoadKeys.key(runID: plan.runID, connection: index, sequence: sequence)
        debit.lineItems = lineItems()
        lastRun[account] = debit.runID
        return debit
    }

    private func lineItems() -> [Billing_V1_LineItem] {
        var llm = Billing_V1_LineItem()
        llm.llm.model = "gpt-4o-mini"
        llm.llm.inputTokens = Int64(rng.next() % 4000)
        llm.llm.outputTokens = Int64(rng.next() % 1000)
        var tool = Billing_V1_LineItem()
        tool.toolCall.integration = "slack"
        tool.toolCall.calls = 1
        return [llm, tool]
    }

    private func reason(_ details: String?) -> String? {
        guard var details else { return nil }
        while details.count % 4 != 0 { details += "=" }
        guard let data = Data(base64Encoded: details),
              let status = try? Google_Rpc_Status(serializedBytes: [UInt8](data)),
              let any = status.details.first,
              let info = try? Google_Rpc_ErrorInfo(unpackingAny: any) else { return nil }
        return info.reason
    }
}

/// Idempotency keys of `billing load`: unique per run, connection and call.
enum LoadKeys {
    static func key(runID: String, connection: Int, sequence: Int64) -> String {
        "\(runID)-c\(connection)-\(sequence)"
    }
}

func statusName(_ code: Int) -> String {
    GRPCStatus.Code(rawValue: code)?.name ?? "NO_STATUS"
}

func monotonicNow() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// A small seeded generator (SplitMix64): the same load for the same seed.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
