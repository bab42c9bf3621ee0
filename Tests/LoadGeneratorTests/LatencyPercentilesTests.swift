import LoadGenerator
import Testing

/// The five figures in the summary's order.
func figures(_ latency: LatencyPercentiles) -> [UInt64] {
    [latency.p50, latency.p90, latency.p99, latency.p999, latency.max]
}

@Suite struct LatencyPercentilesTests {
    /// A tally of OK calls with these latencies.
    func tally(_ samples: [(micros: UInt64, count: Int)]) -> LoadTally {
        var tally = LoadTally()
        let ok = CallOutcome(rpc: .quote, call: FinishedCall(streamID: 1, status: 0, response: [], details: nil))
        for (micros, count) in samples {
            for _ in 0..<count { tally.record(ok, latencyMicros: micros) }
        }
        return tally
    }

    @Test func uniformOneToAThousandMicrosecondsIsExact() {
        // Below 2,048 µs every value has its own bucket at 3 significant digits.
        #expect(figures(tally((1...1000).map { ($0, 1) }).latency) == [500, 900, 990, 999, 1000])
    }

    struct Skewed: Sendable, CustomTestStringConvertible {
        let name: String
        let samples: [(micros: UInt64, count: Int)]
        /// The true order statistics (the ⌈q·n⌉-th smallest sample) and the largest sample.
        let exact: [UInt64]
        /// What HdrHistogram reports: the top of each value's bucket (capped at the largest
        /// sample for percentiles; not for max). Buckets are 1 µs wide below 2,048 µs, then
        /// double at each power of two: 2 from 2,048, 4 from 4,096, 8 from 8,192, 32 from
        /// 32,768, 1,024 from 1,048,576 µs.
        let reported: [UInt64]
        var testDescription: String { name }
    }

    static let skewed: [Skewed] = [
        Skewed(name: "90 % fast, a slow 1 %, 0.1 % very slow, one 2 s outlier",
               samples: [(200, 900), (3000, 90), (40_000, 9), (2_000_000, 1)],
               exact: [200, 200, 3000, 40_000, 2_000_000],
               reported: [200, 200, 3001, 40_031, 2_000_895]),
        Skewed(name: "one slow call in a thousand stays out of p99.9",
               samples: [(100, 999), (10_000, 1)],
               exact: [100, 100, 100, 100, 10_000],
               reported: [100, 100, 100, 100, 10_007]),
        Skewed(name: "p99 falls on the slow half's first sample",
               samples: [(1500, 989), (5000, 11)],
               exact: [1500, 1500, 5000, 5000, 5000],
               reported: [1500, 1500, 5000, 5000, 5003]),
    ]

    @Test(arguments: skewed)
    func skewedSamplesMatchHandComputedFigures(_ set: Skewed) {
        let reported = figures(tally(set.samples).latency)
        #expect(reported == set.reported)
        // And the reported figures are the true ones within 3 significant digits.
        for (reported, exact) in zip(reported, set.exact) {
            #expect(reported >= exact && Double(reported - exact) <= Double(exact) * 0.001, "\(reported) vs \(exact)")
        }
    }

    @Test func mergingTalliesEqualsRecordingIntoOne() {
        var odd = tally(stride(from: 1, through: 999, by: 2).map { ($0, 1) })
        let even = tally(stride(from: 2, through: 1000, by: 2).map { ($0, 1) })
        odd.merge(even)
        #expect(odd.completed == 1000 && odd.ok == 1000 && odd.byStatus == ["OK": 1000])
        #expect(figures(odd.latency) == [500, 900, 990, 999, 1000])
    }

    @Test func labelledMillisecondsAreInTheSummaryOrder() {
        let labelled = tally([(200, 900), (3000, 90), (40_000, 9), (2_000_000, 1)]).latency.labelledMilliseconds
        #expect(labelled.map(\.label) == ["p50", "p90", "p99", "p99.9", "max"])
        #expect(labelled.map(\.milliseconds) == [0.2, 0.2, 3.001, 40.031, 2000.895])
    }
}
