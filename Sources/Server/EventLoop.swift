import GRPC
import CLinux
import Dispatch
import Glibc
import Logging
import Synchronization

/// One thread's epoll loop. Owns its connections; other threads reach it
/// only through `execute`, which queues work and wakes the loop via eventfd.
final class EventLoop: GRPCLoop, @unchecked Sendable {
    let index: Int
    let epollFD: Int32
    let wakeFD: Int32
    let logger: Logger
    private struct Queue {
        var pending: [@Sendable () -> Void] = []
        /// Set when the loop has stopped: later work runs on `afterStop`.
        var stopped = false
    }

    private let queue = Mutex(Queue())
    /// Where work goes once the loop has stopped: serial, in order, as on
    /// the loop (the ledger actor runs on loop 0; two of its jobs must never
    /// run at once, and `close` still needs it after shutdown).
    private let afterStop: DispatchQueue

    // Loop-thread state below.
    var timers = TimerHeap()
    var connections: [Int32: Connection] = [:]
    var dirty: [Connection] = []
    /// Connections that stopped reading at their per-turn share with bytes
    /// left in the socket (edge-triggered: no new event would come), read
    /// again next turn.
    var readAgain: [Connection] = []
    var listenFD: Int32 = -1
    var acceptor: ((EventLoop) -> Void)?
    /// Run by the once-a-second sweep (the server's refusal log).
    var onSweep: ((EventLoop) -> Void)?
    var shuttingDown = false
    var stopped = false
    /// One read buffer per loop: every socket read lands here first.
    var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    /// Work queued from the loop's own thread.
    var local: [@Sendable () -> Void] = []
    /// `runQueued`'s other buffers: swapped with `local` and the shared
    /// queue, so that taking a turn's work allocates nothing (taking a copy
    /// and emptying the original with `removeAll(keepingCapacity:)` made a
    /// new buffer each turn: the copy shared the old one).
    private var takenLocal: [@Sendable () -> Void] = []
    private var takenRemote: [@Sendable () -> Void] = []
    /// Turns of the loop so far (one `epoll_wait` each), for tests of what
    /// runs in which turn.
    private(set) var turns: UInt64 = 0

    init(index: Int, logger: Logger) throws {
        self.index = index
        self.logger = logger
        self.afterStop = DispatchQueue(label: "billing-loop-\(index)-stopped")
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw SocketError(operation: "epoll_create1", errno: errno) }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else { throw SocketError(operation: "eventfd", errno: errno) }
        try register(wakeFD, events: EPOLLIN.rawValue)
    }

    deinit {
        close(wakeFD)
        close(epollFD)
    }

    var nowNanos: UInt64 { monotonicNanos() }

    /// The loop running on the current thread, if any: set by `run()` for
    /// its thread, cleared before it returns. Thread-specific, not a saved
    /// `pthread_t`: glibc gives a finished thread's id to the next thread it
    /// creates, which would then pass for the loop (and queue work there
    /// that nothing drains).
    private static let current: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    var inEventLoop: Bool {
        pthread_getspecific(Self.current) == Unmanaged.passUnretained(self).toOpaque()
    }


    func execute(_ work: @escaping @Sendable () -> Void) {
        if inEventLoop {
            // On our own thread: the loop drains this before it sleeps, so no
            // lock and no eventfd write.
            local.append(work)
            return
        }
        let (queued, wasEmpty) = queue.withLock { state -> (Bool, Bool) in
            guard !state.stopped else { return (false, false) }
            state.pending.append(work)
            return (true, state.pending.count == 1)
        }
        guard queued else {
            // The loop has stopped (shutdown): a handler task resumed late, or
            // the ledger actor, still runs — elsewhere, in order.
            afterStop.async(execute: work)
            return
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    func schedule(atNanos deadline: UInt64, _ work: @escaping () -> Void) -> GRPCTimerID {
        GRPCTimerID(timers.insert(deadline: deadline, work))
    }

    func cancel(_ timer: GRPCTimerID) {
        timers.cancel(timer.rawValue)
    }

    func register(_ fd: Int32, events: UInt32) throws {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
            throw SocketError(operation: "epoll_ctl(ADD)", errno: errno)
        }
    }

    func unregister(_ fd: Int32) {
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
    }

    /// Whether this loop has stopped accepting for a while (`pauseAccepting`).
    private(set) var acceptPaused = false

    /// Stops watching the listening socket for `nanos`: the process is out of
    /// file descriptors, and a connection `accept4` could not take stays
    /// queued, so the level-triggered socket would wake the loop again at
    /// once — a loop (the ledger's, on loop 0) spinning at 100 % and a log
    /// line per turn. Connections closing meanwhile give descriptors back.
    func pauseAccepting(forNanos nanos: UInt64) {
        guard listenFD >= 0, !acceptPaused else { return }
        acceptPaused = true
        unregister(listenFD)
        _ = timers.insert(deadline: monotonicNanos() + nanos) { [unowned self] in
            acceptPaused = false
            guard listenFD >= 0, !shuttingDown else { return }
            try? register(listenFD, events: EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue)
        }
    }

    func markDirty(_ connection: Connection) {
        guard !connection.isDirty else { return }
        connection.isDirty = true
        dirty.append(connection)
    }

    /// Runs until shutdown has drained every connection.
    func run() {
        pthread_setspecific(Self.current, Unmanaged.passUnretained(self).toOpaque())
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while !stopped {
            turns &+= 1
            let timeout: Int32
            if !local.isEmpty || !readAgain.isEmpty {
                timeout = 0
            } else if let next = timers.nextDeadline() {
                let now = monotonicNanos()
                // (In milliseconds, rounded up; a far deadline waits 1 s, never overflows.)
                timeout = next <= now ? 0 : Int32(min((next - now) / 1_000_000 + 1, 1000))
            } else {
                timeout = 1000
            }
            let count = epoll_wait(epollFD, &events, Int32(events.count), timeout)
            if count < 0 && errno != EINTR {
                logger.critical("epoll_wait failed", metadata: ["errno": "\(errno)"])
                shuttingDown = true  // work handed here from now on is refused, not served on a dead loop
                break
            }
            // Those that stopped at their share last turn read after this
            // turn's events: one busy peer gets a share, then everyone else.
            let again = readAgain
            readAgain.removeAll(keepingCapacity: true)
            for i in 0..<max(0, Int(count)) {
                let fd = events[i].data.fd
                let flags = events[i].events
                if fd == wakeFD {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                } else if fd == listenFD {
                    acceptor?(self)
                } else if let connection = connections[fd] {
                    if flags & (EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0 {
                        connection.onReadable(peerShutDown: flags & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue) != 0,
                                              peerGone: flags & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0)
                    }
                    if flags & EPOLLOUT.rawValue != 0 {
                        markDirty(connection)
                    }
                }
            }
            for connection in again { connection.onReadable() }
            runQueued()
            for work in timers.popDue(now: monotonicNanos()) { work() }
            flushDirty()
            if shuttingDown && connections.isEmpty { stopped = true }
        }
        // Work queued but not run (tasks of handlers placed here, resumed as
        // the loop stopped; ledger jobs) runs on a serial queue, as will any
        // later work: a stopped loop must not strand the ledger actor
        // (`close` awaits it).
        // Handed over under the lock, before any later work can be: in order.
        pthread_setspecific(Self.current, nil)
        let local = self.local
        self.local.removeAll()
        queue.withLock { state in
            state.stopped = true
            for work in local + state.pending { afterStop.async(execute: work) }
            state.pending.removeAll()
        }
    }

    /// Runs the work queued so far, once: work it queues waits for the next
    /// turn, after the sockets, timers and pending output (a stream of
    /// resumed handler tasks cannot starve them). Local work left makes the
    /// next `epoll_wait` return at once; remote work queued since the
    /// snapshot found the queue empty and wrote the eventfd.
    private func runQueued() {
        swap(&local, &takenLocal)
        for item in takenLocal { item() }
        takenLocal.removeAll(keepingCapacity: true)
        var remote = takenRemote
        takenRemote = []  // `remote` the only reference: the swap below moves buffers, copies none
        queue.withLock { state in swap(&state.pending, &remote) }
        for item in remote { item() }
        remote.removeAll(keepingCapacity: true)
        takenRemote = remote
    }

    private func flushDirty() {
        // Flushing may close connections or dirty others; loop until quiet.
        while !dirty.isEmpty {
            let batch = dirty
            dirty.removeAll(keepingCapacity: true)
            for connection in batch {
                connection.isDirty = false
                connection.flush()
            }
        }
    }

    func add(_ connection: Connection) {
        connections[connection.fd] = connection
        do {
            try register(connection.fd, events: EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue)
        } catch {
            logger.error("cannot watch connection", metadata: ["error": "\(error)"])
            connection.close()
        }
        markDirty(connection)  // send our SETTINGS at once
    }

    func remove(_ connection: Connection) {
        unregister(connection.fd)
        connections[connection.fd] = nil
    }

    /// Stops accepting, sends GOAWAY on every connection; the loop exits
    /// when they have all closed, or when `drainDeadline` passes.
    func beginShutdown(drainDeadline: UInt64) {
        guard !shuttingDown else { return }
        shuttingDown = true
        if listenFD >= 0 {
            unregister(listenFD)
            // No longer listening, though the descriptor stays open until
            // every loop has exited (one still in accept4 must not find its
            // number reused): connections the kernel would queue and never
            // hand over are refused, so clients reconnect elsewhere at once
            // instead of waiting out the drain for a SETTINGS that never
            // comes. (Every loop does it; after the first it is a no-op.)
            _ = Glibc.shutdown(listenFD, Int32(SHUT_RDWR))
            listenFD = -1
        }
        // Two GOAWAYs a round trip apart; one for a peer that never began
        // HTTP/2. A peer that has not acknowledged the PING within a second
        // (or half the drain) gets the final one anyway: a connection with
        // no calls then closes instead of waiting out the drain.
        for connection in connections.values {
            connection.grpc.beginGracefulShutdown(twoStep: connection.grpc.peerIsSpeakingHTTP2)
            markDirty(connection)
        }
        let now = monotonicNanos()
        let finishAt = now + min(1_000_000_000, drainDeadline > now ? (drainDeadline - now) / 2 : 0)
        _ = timers.insert(deadline: finishAt) { [unowned self] in
            for connection in connections.values {
                connection.grpc.finishGracefulShutdown()
                markDirty(connection)
            }
        }
        _ = timers.insert(deadline: drainDeadline) { [unowned self] in
            for connection in Array(connections.values) {
                logger.warning("drain deadline passed; closing", metadata: ["peer": "\(connection.peer)"])
                connection.close()
            }
        }
    }

    /// A drain under way ends now: every connection is closed, its calls
    /// in flight with it (an operator's second signal).
    func endDrainNow() {
        guard shuttingDown else { return }
        for connection in Array(connections.values) {
            logger.warning("drain cut short; closing", metadata: ["peer": "\(connection.peer)"])
            connection.close()
        }
    }

    /// Ends stalled requests (`expireStalledRequests`) and closes
    /// connections that have been idle too long; runs once a second.
    func sweepIdle(timeoutNanos: UInt64, requestTimeoutNanos: UInt64, handshakeTimeoutNanos: UInt64) {
        for connection in connections.values {
            connection.grpc.expireStalledRequests(olderThan: requestTimeoutNanos)  // marks it for output
        }
        let now = monotonicNanos()
        for connection in Array(connections.values)
        where !connection.grpc.peerIsSpeakingHTTP2 && now &- connection.openedNanos > handshakeTimeoutNanos {
            logger.debug("closing a connection that never began HTTP/2", metadata: ["peer": "\(connection.peer)"])
            connection.close()
        }
        // Idle: no call for the timeout since the last one started or ended
        // (or since the accept) — frames without calls do not count.
        for connection in Array(connections.values)
        where connection.grpc.openCallCount == 0 && now &- max(connection.openedNanos, connection.grpc.lastCallNanos) > timeoutNanos {
            logger.debug("closing idle connection", metadata: ["peer": "\(connection.peer)"])
            connection.grpc.beginGracefulShutdown(twoStep: false)
            connection.flush()
            connection.close()
        }
        onSweep?(self)
        _ = timers.insert(deadline: now + 1_000_000_000) { [unowned self] in
            sweepIdle(timeoutNanos: timeoutNanos, requestTimeoutNanos: requestTimeoutNanos, handshakeTimeoutNanos: handshakeTimeoutNanos)
        }
    }
}

func monotonicNanos() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Handlers placed on the loop run here (`GRPCExecutorLoop`).
extension EventLoop: GRPCExecutorLoop {
    var handlerExecutor: (any TaskExecutor)? { self }
}
