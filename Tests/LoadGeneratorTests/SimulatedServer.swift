import HTTP2
import LoadGenerator
import Synchronization

/// A clock the test moves: nanoseconds, starting well away from zero.
final class FakeClock: Sendable {
    private let nanos: Atomic<UInt64>

    init(startNanos: UInt64) { nanos = Atomic(startNanos) }

    var now: UInt64 { nanos.load(ordering: .relaxed) }

    func set(_ value: UInt64) {
        precondition(value >= now, "the fake clock went back")
        nanos.store(value, ordering: .relaxed)
    }
}

/// A server that answers every call OK `latencyNanos` after it started, or
/// never (`nil`: a stalled server). Waiting in a poll moves the fake clock
/// to the first answer due, or by the whole wait when none is.
final class SimulatedServer: LoadTransport {
    struct Started {
        let streamID: Int32
        let path: String
        let message: [UInt8]
        let at: UInt64
    }

    let clock: FakeClock
    let latencyNanos: UInt64?
    private(set) var started: [Started] = []
    private(set) var polls = 0
    private var pending: [(streamID: Int32, due: UInt64)] = []
    private var nextStreamID: Int32 = 1

    init(clock: FakeClock, latencyNanos: UInt64?) {
        self.clock = clock
        self.latencyNanos = latencyNanos
    }

    /// Refuses every call (a connection that broke).
    var failStarts = false

    func start(path: String, message: [UInt8], metadata: [HTTP2Header]) throws -> Int32 {
        if failStarts { throw StartRefused() }
        let id = nextStreamID
        nextStreamID += 2  // client streams are odd
        started.append(Started(streamID: id, path: path, message: message, at: clock.now))
        if let latencyNanos { pending.append((id, clock.now + latencyNanos)) }
        return id
    }

    func flush() throws {}

    /// When the next answer is due; nil when none is pending.
    var nextDue: UInt64? { pending.map(\.due).min() }

    func finishedCalls(waitingMillis: Int32) throws -> [FinishedCall] {
        polls += 1
        precondition(polls < 10_000_000, "the worker's loop does not end")
        let waitEnds = clock.now + UInt64(waitingMillis) * 1_000_000
        guard let firstDue = pending.map(\.due).min(), firstDue <= waitEnds else {
            clock.set(waitEnds)
            return []
        }
        clock.set(max(clock.now, firstDue))
        let now = clock.now
        let answered = pending.filter { $0.due <= now }
        pending.removeAll { $0.due <= now }
        return answered.map { FinishedCall(streamID: $0.streamID, status: 0, response: [], details: nil) }
    }
}

/// A plan for tests: no socket is opened, so the address is never used.
func testPlan(deadlineNanos: UInt64, intervalNanos: UInt64 = 0, streams: Int = 8, mix: [LoadRPC] = [.quote],
              accounts: Int = 3, batchSize: Int = 10, runID: String = "load-test-1") -> LoadPlan {
    LoadPlan(host: "127.0.0.1", port: 1, tls: nil, authorization: [HTTP2Header("authorization", "Bearer bk_test")],
             streams: streams, mix: mix, batchSize: batchSize,
             accounts: (0..<accounts).map { LoadKeys.account(runID: runID, index: $0) }, agents: 10, runID: runID,
             deadlineNanos: deadlineNanos, intervalNanos: intervalNanos)
}

struct StartRefused: Error {}
