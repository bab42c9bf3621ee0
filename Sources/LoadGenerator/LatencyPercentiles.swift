public import Histogram

/// The latencies `billing load` reports, in microseconds, as the histogram
/// resolves them: exact below 2,048 µs, within 0.1 % (3 significant digits)
/// above. `max` is the top of the largest value's bucket, as HdrHistogram
/// reports it, so it can exceed the largest recorded value by that much.
public struct LatencyPercentiles: Equatable, Sendable {
    public let p50: UInt64
    public let p90: UInt64
    public let p99: UInt64
    public let p999: UInt64
    public let max: UInt64

    public init(_ histogram: Histogram<UInt64>) {
        p50 = histogram.valueAtPercentile(50)
        p90 = histogram.valueAtPercentile(90)
        p99 = histogram.valueAtPercentile(99)
        p999 = histogram.valueAtPercentile(99.9)
        max = histogram.max
        assert(p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max, "percentiles out of order")
    }

    /// The five figures in milliseconds (the summary's unit), labelled as it prints them.
    public var labelledMilliseconds: [(label: String, milliseconds: Double)] {
        [("p50", p50), ("p90", p90), ("p99", p99), ("p99.9", p999), ("max", max)].map { ($0, Double($1) / 1000) }
    }
}
