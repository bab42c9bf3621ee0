import LoadGenerator
import Testing

@Suite struct PacerTests {
    static let second: UInt64 = 1_000_000_000

    @Test func intervalSplitsTheRateOverTheConnections() {
        #expect(Pacer.intervalNanos(rate: 200, connections: 4) == 20_000_000)
        #expect(Pacer.intervalNanos(rate: 3, connections: 1) == 333_333_333)
        #expect(Pacer.intervalNanos(rate: 1_000_000, connections: 1) == 1000)
        #expect(Pacer.intervalNanos(rate: 0, connections: 4) == 0)
    }

    @Test func callKIsDueAtStartPlusKIntervals() {
        let pacer = Pacer(startNanos: 5 * Self.second, intervalNanos: 20_000_000)
        #expect(pacer.dueNanos(ofCall: 0) == 5 * Self.second)
        #expect(pacer.dueNanos(ofCall: 1) == 5 * Self.second + 20_000_000)
        #expect(pacer.dueNanos(ofCall: 50) == 6 * Self.second)
        #expect(!pacer.isDue(call: 50, at: 6 * Self.second - 1))
        #expect(pacer.isDue(call: 50, at: 6 * Self.second))
        // Behind schedule: every call owed is due at once.
        #expect(pacer.isDue(call: 10, at: 6 * Self.second))
    }

    @Test func unpacedEveryCallIsDueAtOnce() {
        let pacer = Pacer(startNanos: Self.second, intervalNanos: 0)
        #expect(!pacer.isPaced)
        #expect(pacer.isDue(call: 0, at: Self.second) && pacer.isDue(call: 1_000_000, at: Self.second))
    }

    struct Rate: Sendable, CustomTestStringConvertible {
        let rate: Int
        let connections: Int
        let seconds: UInt64
        var testDescription: String { "\(rate)/s on \(connections) connections for \(seconds) s" }
    }

    static let rates = [
        Rate(rate: 200, connections: 4, seconds: 4),  // the interop test's run
        Rate(rate: 1000, connections: 4, seconds: 10),
        Rate(rate: 333, connections: 3, seconds: 5),
        Rate(rate: 7, connections: 1, seconds: 10),
        Rate(rate: 50_000, connections: 4, seconds: 2),
        Rate(rate: 999_999, connections: 7, seconds: 1),
    ]

    /// The schedule alone: the calls due before the time bound, over all connections.
    @Test(arguments: rates)
    func scheduledCallsAreWithinFivePercentOfTheRate(_ asked: Rate) {
        let start = 3 * Self.second
        let deadline = start + asked.seconds * Self.second
        let interval = Pacer.intervalNanos(rate: asked.rate, connections: asked.connections)
        var total: Int64 = 0
        for _ in 0..<asked.connections {
            let pacer = Pacer(startNanos: start, intervalNanos: interval)
            var calls: Int64 = 0
            while pacer.dueNanos(ofCall: calls) < deadline { calls += 1 }
            total += calls
        }
        let expected = Double(asked.rate) * Double(asked.seconds)
        #expect(abs(Double(total) - expected) <= 0.05 * expected, "\(total) calls, asked \(expected)")
        // Every connection sends its first call at the start, so the schedule
        // is over by less than one call per connection, never under.
        #expect(Double(total) >= expected && Double(total) < expected + Double(asked.connections) + 1)
    }
}
