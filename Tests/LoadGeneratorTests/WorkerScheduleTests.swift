import LoadGenerator
import Testing

@Suite struct WorkerScheduleTests {
    static let deadline: UInt64 = 10_000_000_000
    static let grace = WorkerSchedule.graceNanos

    func schedule(requests: Int64 = .max, streams: Int = 4, intervalNanos: UInt64 = 0, sent: Int = 0) -> WorkerSchedule {
        var schedule = WorkerSchedule(deadlineNanos: Self.deadline, requests: requests, streams: streams,
                                      pacer: Pacer(startNanos: Self.deadline - 1_000_000_000, intervalNanos: intervalNanos))
        for _ in 0..<sent { schedule.didSend() }
        return schedule
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let now: UInt64
        let inFlight: Int
        let step: WorkerSchedule.Step
        var testDescription: String { name }
    }

    static let timeBoundCases = [
        Case(name: "before the bound, a free stream", now: deadline - 1, inFlight: 3, step: .send),
        Case(name: "before the bound, every stream busy", now: deadline - 1, inFlight: 4, step: .poll),
        Case(name: "at the bound, nothing in flight", now: deadline, inFlight: 0, step: .finish),
        Case(name: "at the bound, calls in flight: wait, do not send", now: deadline, inFlight: 1, step: .poll),
        Case(name: "last moment of the grace", now: deadline + grace - 1, inFlight: 2, step: .poll),
        Case(name: "grace over, calls in flight", now: deadline + grace, inFlight: 2, step: .abandon),
        Case(name: "grace over, nothing in flight", now: deadline + grace, inFlight: 0, step: .finish),
    ]

    @Test(arguments: timeBoundCases)
    func stepsAroundTheTimeBound(_ c: Case) {
        #expect(schedule().step(now: c.now, inFlight: c.inFlight) == c.step)
    }

    @Test func countBoundStopsSendingThenFinishesWhenAnswered() {
        #expect(schedule(requests: 3, sent: 2).step(now: 0, inFlight: 2) == .send)
        #expect(schedule(requests: 3, sent: 3).step(now: 0, inFlight: 2) == .poll)
        #expect(schedule(requests: 3, sent: 3).step(now: 0, inFlight: 0) == .finish)
        #expect(schedule(requests: 0).step(now: 0, inFlight: 0) == .finish)
    }

    @Test func pacedSendsWaitForTheirTime() {
        // Paced at 100 ms from deadline - 1 s: call 5 is due at deadline - 500 ms.
        let paced = schedule(intervalNanos: 100_000_000, sent: 5)
        #expect(paced.step(now: Self.deadline - 500_000_001, inFlight: 0) == .poll)
        #expect(paced.step(now: Self.deadline - 500_000_000, inFlight: 0) == .send)
        #expect(paced.pollTimeoutMillis == 1)
        #expect(schedule().pollTimeoutMillis == 50)
    }
}
