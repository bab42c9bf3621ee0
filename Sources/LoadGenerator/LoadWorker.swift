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
    let tally = Mutex(LoadTally())

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
        var drive = Drive(worker: self)
        while true {
            guard try drive.sendDue(on: transport) else { return }
            try transport.flush()
            drive.take(try transport.finishedCalls(waitingMillis: drive.schedule.pollTimeoutMillis))
        }
    }

    /// One connection's state while it runs: what to send next, what is in
    /// flight. Shared by the one-connection loop (`run(on:)`) and the loop
    /// that drives every connection from one thread (`runTogether`).
    package struct Drive {
        let worker: LoadWorker
        package var schedule: WorkerSchedule
        var messages: LoadRequests
        var inFlight: [Int32: (rpc: LoadRPC, started: UInt64, debited: (account: String, run: String)?)] = [:]

        package init(worker: LoadWorker) {
            self.worker = worker
            schedule = WorkerSchedule(
                deadlineNanos: worker.plan.deadlineNanos, requests: worker.requests, streams: worker.plan.streams,
                pacer: Pacer(startNanos: worker.clock(), intervalNanos: worker.plan.intervalNanos))
            messages = LoadRequests(connection: worker.index, plan: worker.plan)
        }

        /// Starts every call that is due; false once a bound ended the run
        /// (every call answered, or the grace after the time bound ran out).
        package mutating func sendDue(on transport: some LoadTransport) throws -> Bool {
            while true {
                switch schedule.step(now: worker.clock(), inFlight: inFlight.count) {
                case .send:
                    let request = try messages.next()
                    let id = try transport.start(path: request.rpc.path, message: request.message,
                                                 metadata: worker.plan.authorization)
                    inFlight[id] = (request.rpc, worker.clock(), request.debited)
                    schedule.didSend()
                case .poll:
                    return true
                case .finish:
                    return false
                case .abandon:
                    let unanswered = Int64(inFlight.count)
                    worker.tally.withLock { $0.abandoned += unanswered }
                    return false
                }
            }
        }

        /// Counts the calls the server answered.
        package mutating func take(_ finished: [FinishedCall]) {
            for done in finished {
                guard let call = inFlight.removeValue(forKey: done.streamID) else { continue }
                if done.status == 0, let debited = call.debited {
                    messages.acknowledged(account: debited.account, run: debited.run)
                }
                let outcome = CallOutcome(rpc: call.rpc, call: done)
                let latency = (worker.clock() - call.started) / 1000
                worker.tally.withLock { $0.record(outcome, latencyMicros: latency) }
            }
        }
    }

    /// Drives several connections from one thread, as h2load does: starts
    /// what is due on each, writes each once, then waits for any of them
    /// (`wait` returns the indices with answers, at most `timeoutMillis`
    /// later). Fewer, fuller writes than a thread per connection, and no
    /// thread hand-offs on a busy core. A connection that fails stops alone;
    /// its error is returned with its index.
    package static func runTogether<Transport: LoadTransport>(
        _ pairs: [(LoadWorker, Transport)], wait: ([Transport], Int32) throws -> [Int]
    ) -> [(index: Int, error: any Error)] {
        var drives = pairs.map { Drive(worker: $0.0) }
        let transports = pairs.map(\.1)
        var active = Set(drives.indices)
        var failures: [(index: Int, error: any Error)] = []
        func fail(_ index: Int, _ error: any Error) {
            active.remove(index)
            failures.append((drives[index].worker.index, error))
        }
        while !active.isEmpty {
            var timeout: Int32 = 50
            for index in active.sorted() {
                do {
                    if try drives[index].sendDue(on: transports[index]) {
                        try transports[index].flush()
                        timeout = min(timeout, drives[index].schedule.pollTimeoutMillis)
                    } else {
                        active.remove(index)
                    }
                } catch {
                    fail(index, error)
                }
            }
            guard !active.isEmpty else { break }
            let ready: [Int]
            do {
                ready = try wait(transports, timeout)
            } catch {
                for index in active { fail(index, error) }
                break
            }
            for index in ready where active.contains(index) {
                do {
                    drives[index].take(try transports[index].finishedCalls(waitingMillis: 0))
                } catch {
                    fail(index, error)
                }
            }
        }
        return failures
    }
}
