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
    /// Calls in progress (streams with a call) across all connections.
    public let openCalls = Atomic<Int>(0)

    /// `knownPaths`: label values allowed for `grpc_method`; anything else is
    /// counted as "unknown", so a client cannot grow the label set.
    public init(knownPaths: Set<String>) {
        self.knownPaths = knownPaths
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
