import Foundation

/// The end-of-run report, as text for people or JSON for machines.
public struct LoadSummary {
    public let tally: LoadTally
    public let elapsed: Double
    public let failures: [String]
    public let runID: String

    public init(tally: LoadTally, elapsed: Double, failures: [String], runID: String) {
        self.tally = tally
        self.elapsed = elapsed
        self.failures = failures
        self.runID = runID
    }

    /// Calls answered per second of the run.
    public var throughput: Double { elapsed > 0 ? Double(tally.completed) / elapsed : 0 }

    public func text() -> String {
        let latency = tally.latency.labelledMilliseconds.map { "\($0.label) \(fmt($0.milliseconds))" }
        var lines = [
            "run \(runID): \(tally.completed) calls in \(String(format: "%.2f", elapsed)) s = \(String(format: "%.0f", throughput)) calls/s",
            "latency ms: \(latency.joined(separator: "  "))",
            "debits acknowledged: \(tally.acknowledgedDebits)",
            "abandoned at the time bound: \(tally.abandoned)",
            "outcomes:",
        ]
        for (key, count) in tally.byStatus.sorted(by: { $0.value > $1.value }) { lines.append("  \(key): \(count)") }
        for failure in failures { lines.append("connection failure: \(failure)") }
        return lines.joined(separator: "\n")
    }

    public func json() -> String {
        let latency = tally.latency.labelledMilliseconds.map { ($0.label, $0.milliseconds) }
        let object: [String: Any] = [
            "run_id": runID, "calls": tally.completed, "ok": tally.ok, "elapsed_seconds": elapsed,
            "calls_per_second": throughput, "debits_acknowledged": tally.acknowledgedDebits, "abandoned": tally.abandoned,
            "latency_ms": Dictionary(uniqueKeysWithValues: latency),
            "outcomes": tally.byStatus, "connection_failures": failures,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private func fmt(_ value: Double) -> String { String(format: "%.3f", value) }
}
