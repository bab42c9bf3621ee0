import BillingProto
import LoadGenerator
import Testing

/// The worker's real loop against a simulated server on a fake clock: no
/// socket, no sleeping; a poll's wait moves the clock.
@Suite struct LoadWorkerTests {
    static let start: UInt64 = 7_000_000_000
    static let ms: UInt64 = 1_000_000

    func run(_ plan: LoadPlan, requests: Int64 = .max, latencyNanos: UInt64?, index: Int = 0)
        throws -> (worker: LoadWorker, server: SimulatedServer, clock: FakeClock) {
        let clock = FakeClock(startNanos: Self.start)
        let server = SimulatedServer(clock: clock, latencyNanos: latencyNanos)
        let worker = LoadWorker(index: index, plan: plan, requests: requests, clock: { clock.now })
        try worker.run(on: server)
        return (worker, server, clock)
    }

    @Test func unpacedKeepsEveryStreamBusyAndStopsAtTheTimeBound() throws {
        // 8 streams, answers after 5 ms, 1 s: 200 rounds of 8 calls; the last
        // round starts at 995 ms and is answered exactly at the bound.
        let deadline = Self.start + 1000 * Self.ms
        let (worker, server, clock) = try run(testPlan(deadlineNanos: deadline, streams: 8), latencyNanos: 5 * Self.ms)
        let tally = worker.tallySoFar
        #expect(server.started.count == 1600)
        #expect(server.started.allSatisfy { $0.at < deadline })
        #expect(tally.completed == 1600 && tally.ok == 1600 && tally.abandoned == 0)
        #expect(clock.now == deadline)
        // Every call took 5 ms; max is the top of 5,000 µs's 4 µs-wide bucket.
        #expect(figures(tally.latency) == [5000, 5000, 5000, 5000, 5003])
    }

    @Test func callsInFlightAtTheBoundAreAwaitedNotRepeated() throws {
        // Answers after 7 ms: rounds start at 0, 7, …, 994 ms (143 rounds);
        // the last is answered at 1,001 ms and the worker stops then.
        let deadline = Self.start + 1000 * Self.ms
        let (worker, server, clock) = try run(testPlan(deadlineNanos: deadline, streams: 8), latencyNanos: 7 * Self.ms)
        #expect(server.started.count == 143 * 8)
        #expect(server.started.last?.at == Self.start + 994 * Self.ms)
        #expect(worker.tallySoFar.completed == 143 * 8)
        #expect(clock.now == Self.start + 1001 * Self.ms)
    }

    @Test func aStalledServerIsAbandonedAtTheEndOfTheGrace() throws {
        let deadline = Self.start + 2000 * Self.ms
        let (worker, server, clock) = try run(testPlan(deadlineNanos: deadline, streams: 4), latencyNanos: nil)
        let tally = worker.tallySoFar
        #expect(server.started.count == 4)
        #expect(tally.completed == 0 && tally.abandoned == 4)
        // Polls wait 50 ms each: the first look at or past deadline + grace ends the run.
        #expect(clock.now == deadline + WorkerSchedule.graceNanos)
        #expect(server.polls == Int((deadline + WorkerSchedule.graceNanos - Self.start) / (50 * Self.ms)))
    }

    @Test(arguments: [(Int64(7), 4), (1, 8), (200, 3)])
    func countBoundSendsExactlyTheShare(requests: Int64, streams: Int) throws {
        let deadline = Self.start + 3600 * 1000 * Self.ms
        let (worker, server, clock) = try run(testPlan(deadlineNanos: deadline, streams: streams), requests: requests,
                                              latencyNanos: Self.ms)
        #expect(server.started.count == Int(requests))
        #expect(worker.tallySoFar.completed == requests)
        let rounds = (requests + Int64(streams) - 1) / Int64(streams)
        #expect(clock.now == Self.start + UInt64(rounds) * Self.ms)
    }

    @Test(arguments: PacerTests.rates.filter { $0.rate <= 50_000 })
    func pacedWorkersSendWithinFivePercentOfTheRate(_ asked: PacerTests.Rate) throws {
        let deadline = Self.start + asked.seconds * 1000 * Self.ms
        let interval = Pacer.intervalNanos(rate: asked.rate, connections: asked.connections)
        var total = 0
        for index in 0..<asked.connections {
            let plan = testPlan(deadlineNanos: deadline, intervalNanos: interval, streams: 32)
            let (worker, server, _) = try run(plan, latencyNanos: 2 * Self.ms, index: index)
            #expect(worker.tallySoFar.completed == Int64(server.started.count))
            #expect(server.started.allSatisfy { $0.at < deadline })
            total += server.started.count
        }
        let expected = Double(asked.rate) * Double(asked.seconds)
        #expect(abs(Double(total) - expected) <= 0.05 * expected, "\(total) calls, asked \(expected)")
    }

    @Test func outcomesAndAcknowledgedDebitsAreCounted() throws {
        let deadline = Self.start + 100 * Self.ms
        let (worker, _, _) = try run(testPlan(deadlineNanos: deadline, mix: [.debit]), latencyNanos: 10 * Self.ms)
        let tally = worker.tallySoFar
        #expect(tally.completed == 80 && tally.acknowledgedDebits == 80 && tally.byStatus == ["OK": 80])
    }

    @Test func callsGoToTheMixsMethodsWithTheKey() throws {
        let deadline = Self.start + 10 * Self.ms
        let plan = testPlan(deadlineNanos: deadline, mix: [.debit, .quote, .batch, .cost, .usage])
        let (_, server, _) = try run(plan, latencyNanos: Self.ms)
        #expect(Set(server.started.map(\.path)) == Set(LoadRPC.allCases.map(\.path)))
        let debits = server.started.filter { $0.path == LoadRPC.debit.path }
        let first = try #require(debits.first)
        let debit = try Billing_V1_DebitRequest(serializedBytes: first.message)
        #expect(debit.idempotencyKey.hasPrefix("load-test-1-c0-") && plan.accounts.contains(debit.accountID))
    }
}
