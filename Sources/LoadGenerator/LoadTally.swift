public import Histogram

/// What one connection's worker counted; merged at the end and for progress.
public struct LoadTally: Sendable {
    /// Latencies in microseconds, up to a minute, to 3 significant digits.
    public var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    public var completed: Int64 = 0
    public var ok: Int64 = 0
    /// Debits the server acknowledged as accepted (Debit OK + accepted batch results).
    public var acknowledgedDebits: Int64 = 0
    /// Calls by outcome: "OK", or the status name and ErrorInfo reason.
    public var byStatus: [String: Int64] = [:]
    /// Calls still unanswered when the time bound (plus grace) ran out.
    public var abandoned: Int64 = 0

    public init() {}

    /// Counts one answered call that took `latencyMicros`.
    public mutating func record(_ outcome: CallOutcome, latencyMicros: UInt64) {
        _ = histogram.record(latencyMicros)  // false only past a minute: counted, not timed
        completed += 1
        if outcome.isOK { ok += 1 }
        acknowledgedDebits += outcome.acknowledgedDebits
        byStatus[outcome.key, default: 0] += 1
    }

    public mutating func merge(_ other: LoadTally) {
        histogram.add(other.histogram)
        completed += other.completed
        ok += other.ok
        acknowledgedDebits += other.acknowledgedDebits
        abandoned += other.abandoned
        for (key, count) in other.byStatus { byStatus[key, default: 0] += count }
    }

    /// The latency percentiles so far.
    public var latency: LatencyPercentiles { LatencyPercentiles(histogram) }
}
