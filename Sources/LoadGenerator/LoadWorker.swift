import Client
import Synchronization

/// One connection driven by one thread: keeps `streams` calls in flight (or
/// paces them at the asked rate) until the time or count bound, and records
/// each call's latency and outcome in its tally.
public final class LoadWorker: Sendable {
    public let index: Int
    let plan: LoadPlan
    /// Calls this connection sends at most.
    let requests: Int64
    let clock: @Sendable () -> UInt64
    private let tally = Mutex(LoadTally())

    /// `clock` reads nanoseconds on the clock of `plan.deadlineNanos`.
    public init(index: Int, plan: LoadPlan, requests: Int64, clock: @escaping @Sendable () -> UInt64 = monotonicNow) {
        precondition(index >= 0 && requests >= 0)
        self.index = index
        self.plan = plan
        self.requests = requests
        self.clock = clock
    }

    /// What this connection counted so far.
    public var tallySoFar: LoadTally { tally.withLock { $0 } }

    /// Connects, then runs until a bound.
    public func run() throws {
        try run(on: GRPCClientConnection(host: plan.host, port: plan.port, tls: plan.tls))
    }

    /// Drives `transport` until the time or count bound; the schedule decides each step.
    package func run(on transport: some LoadTransport) throws {
        var schedule = WorkerSchedule(
            deadlineNanos: plan.deadlineNanos, requests: requests, streams: plan.streams,
            pacer: Pacer(startNanos: clock(), intervalNanos: plan.intervalNanos))
        var messages = LoadRequests(connection: index, plan: plan)
        var inFlight: [Int32: (rpc: LoadRPC, started: UInt64)] = [:]
        while true {
            switch schedule.step(now: clock(), inFlight: inFlight.count) {
            case .send:
                let request = try messages.next()
                let id = try transport.start(path: request.rpc.path, message: request.message, metadata: plan.authorization)
                inFlight[id] = (request.rpc, clock())
                schedule.didSend()
            case .poll:
                try transport.flush()
                for done in try transport.finishedCalls(waitingMillis: schedule.pollTimeoutMillis) {
                    guard let call = inFlight.removeValue(forKey: done.streamID) else { continue }
                    let outcome = CallOutcome(rpc: call.rpc, call: done)
                    let latency = (clock() - call.started) / 1000
                    tally.withLock { $0.record(outcome, latencyMicros: latency) }
                }
            case .finish:
                return
            case .abandon:
                let unanswered = Int64(inFlight.count)
                tally.withLock { $0.abandoned += unanswered }
                return
            }
        }
    }
}
