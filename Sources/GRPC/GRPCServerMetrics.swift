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
        guard let reason = status.errorInfo?.reason else { return }
        ReasonCounters.increment(refusalsLabel, reason: reason)
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

/// Counters of refusals by ErrorInfo reason, one per (label, reason), made
/// once and kept (reasons are the code's own constants: a bounded set).
public enum ReasonCounters {
    private struct Key: Hashable {
        let label: String
        let reason: String
    }

    private static let counters = Mutex<[Key: Counter]>([:])

    /// Adds one to `label`'s counter of `reason` (nothing for an empty reason).
    public static func increment(_ label: String, reason: String) {
        guard !reason.isEmpty else { return }
        let counter = counters.withLock { all in
            let key = Key(label: label, reason: reason)
            if let existing = all[key] { return existing }
            let created = Counter(label: label, dimensions: [("reason", reason)])
            all[key] = created
            return created
        }
        counter.increment()
    }
}
