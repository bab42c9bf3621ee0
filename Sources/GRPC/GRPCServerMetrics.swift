import Metrics
import Synchronization

/// Calls and latency by method and status code (swift-metrics; the
/// executable bootstraps a Prometheus backend). Metric objects are created
/// once per method and code and cached, so a call costs a dictionary lookup.
public final class GRPCServerMetrics: Sendable {
    struct Key: Hashable {
        let path: String
        let code: Int
    }

    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[String: Metrics.Timer]>([:])
    private let refusals = Mutex<[String: Counter]>([:])
    private let knownPaths: Set<String>
    private let refusalsLabel: String
    /// Calls in progress (streams with a call) across all connections.
    public let openCalls = Atomic<Int>(0)

    /// `knownPaths`: label values allowed for `grpc_method`; anything else is
    /// counted as "unknown", so a client cannot grow the label set.
    /// `refusalsLabel`: the counter of answered statuses by their ErrorInfo
    /// reason (reasons are the code's own constants: a bounded set).
    public init(knownPaths: Set<String>, refusalsLabel: String = "grpc_server_refusals_total") {
        self.knownPaths = knownPaths
        self.refusalsLabel = refusalsLabel
    }

    /// Counts a status answered with an ErrorInfo reason: every refusal
    /// that reaches a caller, whichever layer made it (session 27: only the
    /// handlers' were counted — a message too large, a call limit, a
    /// deadline never were).
    func recordRefusal(_ status: GRPCStatus) {
        guard let reason = status.errorInfo?.reason, !reason.isEmpty else { return }
        let counter = refusals.withLock { all in
            if let existing = all[reason] { return existing }
            let created = Counter(label: refusalsLabel, dimensions: [("reason", reason)])
            all[reason] = created
            return created
        }
        counter.increment()
    }

    func record(path: String, code: GRPCStatus.Code, nanos: UInt64?) {
        let method = knownPaths.contains(path) ? path : "unknown"
        let key = Key(path: method, code: code.rawValue)
        let counter = counters.withLock { all in
            if let existing = all[key] { return existing }
            let created = Counter(label: "grpc_server_handled_total",
                                  dimensions: [("grpc_method", method), ("grpc_code", code.name)])
            all[key] = created
            return created
        }
        counter.increment()
        guard let nanos else { return }
        let timer = timers.withLock { all in
            if let existing = all[method] { return existing }
            let created = Metrics.Timer(label: "grpc_server_handling_seconds", dimensions: [("grpc_method", method)])
            all[method] = created
            return created
        }
        timer.recordNanoseconds(Int64(clamping: nanos))
    }
}
