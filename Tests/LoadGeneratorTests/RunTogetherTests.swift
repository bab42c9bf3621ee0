import HTTP2
import LoadGenerator
import Testing

/// Several connections driven from one thread, against simulated servers on
/// one fake clock: the wait moves the clock to the first answer due.
@Suite struct RunTogetherTests {
    static let start: UInt64 = 7_000_000_000
    static let ms: UInt64 = 1_000_000

    /// Waits as `poll()` over the servers would: until the first answer due
    /// or the timeout, then reports the servers with answers.
    static func wait(_ clock: FakeClock) -> ([SimulatedServer], Int32) -> [Int] {
        { servers, timeoutMillis in
            let timeoutEnds = clock.now + UInt64(timeoutMillis) * ms
            let due = servers.compactMap(\.nextDue).min() ?? timeoutEnds
            clock.set(max(clock.now, min(due, timeoutEnds)))
            return servers.indices.filter { (servers[$0].nextDue ?? .max) <= clock.now }
        }
    }

    @Test func everyConnectionSendsExactlyItsShare() {
        let clock = FakeClock(startNanos: Self.start)
        let plan = testPlan(deadlineNanos: Self.start + 3600 * 1000 * Self.ms, streams: 4)
        let shares: [Int64] = [7, 50, 200]
        let pairs = shares.enumerated().map { index, requests in
            (LoadWorker(index: index, plan: plan, requests: requests, clock: { clock.now }),
             SimulatedServer(clock: clock, latencyNanos: Self.ms * UInt64(index + 1)))
        }
        let failures = LoadWorker.runTogether(pairs, wait: Self.wait(clock))
        #expect(failures.isEmpty)
        for ((worker, server), requests) in zip(pairs, shares) {
            #expect(server.started.count == Int(requests))
            #expect(worker.tallySoFar.completed == requests && worker.tallySoFar.ok == requests)
        }
    }

    @Test func everyConnectionStopsAtTheTimeBound() {
        let clock = FakeClock(startNanos: Self.start)
        let deadline = Self.start + 1000 * Self.ms
        let plan = testPlan(deadlineNanos: deadline, streams: 8)
        let pairs = (0..<3).map { index in
            (LoadWorker(index: index, plan: plan, requests: .max, clock: { clock.now }),
             SimulatedServer(clock: clock, latencyNanos: 5 * Self.ms))
        }
        #expect(LoadWorker.runTogether(pairs, wait: Self.wait(clock)).isEmpty)
        for (worker, server) in pairs {
            #expect(server.started.allSatisfy { $0.at < deadline })
            // 200 rounds of 8 calls of 5 ms each within the second.
            #expect(worker.tallySoFar.completed == 1600)
        }
        #expect(clock.now == deadline)
    }

    @Test func aFailingConnectionStopsAloneAndIsReported() {
        let clock = FakeClock(startNanos: Self.start)
        let plan = testPlan(deadlineNanos: Self.start + 3600 * 1000 * Self.ms, streams: 2)
        let broken = SimulatedServer(clock: clock, latencyNanos: Self.ms)
        broken.failStarts = true
        let pairs = [
            (LoadWorker(index: 0, plan: plan, requests: 10, clock: { clock.now }), SimulatedServer(clock: clock, latencyNanos: Self.ms)),
            (LoadWorker(index: 1, plan: plan, requests: 10, clock: { clock.now }), broken),
        ]
        let failures = LoadWorker.runTogether(pairs, wait: Self.wait(clock))
        #expect(failures.map(\.index) == [1])
        #expect(pairs[0].0.tallySoFar.completed == 10)
    }
}
