import Foundation
public import GRPC
import CLinux
import Glibc
public import Logging
import Synchronization

/// What every loop shares: read-only configuration, the loops, the
/// connection count and whose turn it is to take the next connection.
final class ServerState: Sendable {
    let configuration: ServerConfiguration
    let router: GRPCRouter
    let loops: [EventLoop]
    let openConnections = Atomic<Int>(0)
    /// Connections refused at the limit since the last log line about it,
    /// and when that line was written: one line a second at most (a client
    /// connecting in a loop wrote a line per attempt, ~11,000 a second).
    let refusedAtLimit = Atomic<Int>(0)
    let refusalLoggedNanos = Atomic<UInt64>(0)

    /// Logs the connections refused at the limit since the last line, at
    /// most once a second (at a refusal, and by each loop's sweep: the rest
    /// of a burst is logged within a second or two of its end).
    func logRefusedAtLimit(loop: EventLoop) {
        guard refusedAtLimit.load(ordering: .relaxed) > 0 else { return }
        let now = loop.nowNanos
        let logged = refusalLoggedNanos.load(ordering: .relaxed)
        guard logged == 0 || (now > logged && now - logged >= 1_000_000_000),
              refusalLoggedNanos.compareExchange(expected: logged, desired: now, ordering: .relaxed).exchanged else { return }
        let refused = refusedAtLimit.exchange(0, ordering: .relaxed)
        guard refused > 0 else { return }
        loop.logger.warning("connection limit reached; refusing new connections (one line a second at most)",
                            metadata: ["limit": "\(configuration.maxConnections)", "refused": "\(refused)"])
    }
    private let accepted = Atomic<UInt>(0)

    init(configuration: ServerConfiguration, router: GRPCRouter, loops: [EventLoop]) {
        self.configuration = configuration
        self.router = router
        self.loops = loops
    }

    /// The loop that serves the next accepted connection: each in turn,
    /// whichever loop accepted it (the kernel wakes one loop per burst of
    /// connections, and a loop accepts the whole burst: without the turns,
    /// a client's connections opened together could all land on one loop).
    func nextLoop() -> EventLoop {
        loops[Int(accepted.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(loops.count))]
    }

    /// Reserves a connection slot; false when the limit is reached.
    func tryOpenConnection() -> Bool {
        let after = openConnections.add(1, ordering: .relaxed).newValue
        if after > configuration.maxConnections {
            openConnections.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func connectionClosed() {
        openConnections.subtract(1, ordering: .relaxed)
    }
}

/// The gRPC server: a listening socket shared by N epoll loops, each on
/// its own thread. Handlers run on Swift's shared pool (`PoolExecutor`),
/// except those placed on the loop (`GRPCHandlerPlacement.loop`) and the
/// inline and deferred ones. The loops start with the server, before it
/// listens: the first also runs the ledger actor (`billing serve`), which
/// is opened and used before there is a router to serve.
public final class GRPCServer: Sendable {
    let configuration: ServerConfiguration
    let loops: [EventLoop]
    let logger: Logger
    let finished = DispatchSemaphore(value: 0)
    /// Set by `start`: the listening socket and what its loops share.
    private let listening = Mutex<(fd: Int32, address: SocketAddress, state: ServerState)?>(nil)
    /// Set by `bind`, taken by `start`.
    private let bound = Mutex<(fd: Int32, address: SocketAddress)?>(nil)

    /// Creates the loops and starts their threads; they serve no socket
    /// until `start(router:)`.
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        var loops: [EventLoop] = []
        for index in 0..<configuration.threads {
            var loopLogger = logger
            loopLogger[metadataKey: "loop"] = "\(index)"
            loops.append(try EventLoop(index: index, logger: loopLogger))
        }
        self.loops = loops
        for loop in loops {
            let finished = self.finished
            Thread {
                Thread.current.name = "billing-loop-\(loop.index)"  // set from inside: see GroupCommitter
                loop.run()
                finished.signal()
            }.start()
        }
    }

    /// The first loop, as an executor: `billing serve` runs the ledger on it.
    public var firstLoop: any GRPCExecutorLoop { loops[0] }

    /// Binds and listens on the configured address, serving nothing until
    /// `start` (connections wait in the kernel's queue): a taken port fails
    /// here, before the caller does what a server that cannot listen should
    /// not (`billing serve` binds before it catches up on due transitions).
    /// Returns the address bound (the port resolved when 0 was asked).
    @discardableResult
    public func bind() throws -> SocketAddress {
        let (fd, address) = try Self.listen(on: configuration.listen)
        let twice = self.bound.withLock { bound -> Bool in
            guard bound == nil else { return true }
            bound = (fd, address)
            return false
        }
        precondition(!twice, "GRPCServer.bind called twice")
        return address
    }

    /// Serves `router` from every loop on the socket `bind` made (or binds
    /// now); throws if the socket cannot be bound or watched. Call once.
    public func start(router: GRPCRouter) throws {
        let (fd, bound) = try self.bound.withLock({ $0 }) ?? Self.listen(on: configuration.listen)
        let state = ServerState(configuration: configuration, router: router, loops: loops)
        let started = listening.withLock { listening -> Bool in
            guard listening == nil else { return true }
            listening = (fd, bound, state)
            return false
        }
        precondition(!started, "GRPCServer.start called twice")
        for loop in loops {
            // The accept state is loop-confined: set on the loop's own thread
            // (a readiness seen before it is set is seen again: level-triggered).
            loop.execute {
                guard !loop.shuttingDown else {
                    loop.unregister(fd)  // shut down before it started: accepts nothing
                    return
                }
                loop.listenFD = fd
                loop.acceptor = { loop in Self.acceptConnections(loop: loop, state: state) }
                loop.onSweep = { loop in state.logRefusedAtLimit(loop: loop) }
                loop.sweepIdle(timeoutNanos: state.configuration.idleTimeoutNanos,
                               requestTimeoutNanos: state.configuration.requestTimeoutNanos,
                               handshakeTimeoutNanos: state.configuration.handshakeTimeoutNanos)
            }
            // Here, so that a failure fails the start (epoll_ctl is thread-safe).
            // EPOLLEXCLUSIVE: one loop is woken per incoming connection, not all.
            try loop.register(fd, events: EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue)
        }
    }

    /// The address actually bound (the port is resolved when 0 was asked); after `start`.
    public var boundAddress: SocketAddress {
        guard let address = listening.withLock({ $0?.address }) ?? bound.withLock({ $0?.address }) else {
            preconditionFailure("the server has not bound its address")
        }
        return address
    }

    /// Graceful shutdown: stop accepting, GOAWAY everywhere, let calls in
    /// flight finish until `drainNanos` has passed, then close what is left.
    public func shutdown(drainNanos: UInt64) {
        let deadline = monotonicNanos() + drainNanos
        for loop in loops {
            loop.execute { loop.beginShutdown(drainDeadline: deadline) }
        }
    }

    /// Cuts a drain begun by `shutdown` short: every connection closes now.
    public func endDrainNow() {
        for loop in loops {
            loop.execute { loop.endDrainNow() }
        }
    }

    /// Blocks until every loop has exited (after `shutdown`).
    public func wait() {
        for _ in loops { finished.wait() }
        if let fd = listening.withLock({ $0?.fd }) ?? bound.withLock({ $0?.fd }) { Glibc.close(fd) }
    }

    public var openConnectionCount: Int { listening.withLock { $0?.state.openConnections.load(ordering: .relaxed) ?? 0 } }

    static func listen(on address: SocketAddress) throws -> (Int32, SocketAddress) {
        let result = try address.withSockAddr { pointer, length, family -> Int32 in
            let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SocketError(operation: "socket", errno: errno) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard Glibc.bind(fd, pointer, length) == 0 else {
                let error = errno
                Glibc.close(fd)
                throw SocketError(operation: "bind \(address)", errno: error)
            }
            // Backlog: connections the kernel queues before accept.
            guard Glibc.listen(fd, 4096) == 0 else {
                let error = errno
                Glibc.close(fd)
                throw SocketError(operation: "listen", errno: error)
            }
            return fd
        }
        guard let fd = result else {
            throw SocketError(operation: "parse address \(address.host) (numeric IPv4/IPv6 only)", errno: EINVAL)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port: UInt16 = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        return (fd, SocketAddress(host: address.host, port: port))
    }

    /// How long a loop out of file descriptors stops accepting.
    static let acceptPauseNanos: UInt64 = 100_000_000

    static func acceptConnections(loop: EventLoop, state: ServerState) {
        // Bounded: a burst of connections cannot starve this loop's other sockets.
        for _ in 0..<64 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept4(loop.listenFD, $0, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if fd < 0 {
                if errno == EMFILE || errno == ENFILE {
                    // Paused, or the loop would spin on the connection
                    // left queued (and log this every turn).
                    loop.logger.error("out of file descriptors; not accepting for 100 ms",
                                      metadata: ["open_connections": "\(state.openConnections.load(ordering: .relaxed))"])
                    loop.pauseAccepting(forNanos: Self.acceptPauseNanos)
                }
                return
            }
            guard state.tryOpenConnection() else {
                state.refusedAtLimit.add(1, ordering: .relaxed)
                state.logRefusedAtLimit(loop: loop)
                Glibc.close(fd)
                continue
            }
            var one: Int32 = 1
            // gRPC replies are small and latency-bound: no Nagle delay.
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let peer = SocketAddress.describe(storage)
            let target = state.nextLoop()
            if target === loop {
                serve(fd, peer: peer, on: loop, state: state)
            } else {
                target.execute { serve(fd, peer: peer, on: target, state: state, else: loop) }
            }
        }
    }

    /// Serves an accepted socket on `loop`: run on the loop's thread (or,
    /// once it has stopped, on its after-stop queue, where it is shutting
    /// down). A loop that is shutting down hands the socket back to the loop
    /// that accepted it (`fallback`), which serves it unless it is shutting
    /// down too; then the socket is closed and its slot freed.
    static func serve(_ fd: Int32, peer: String, on loop: EventLoop, state: ServerState, else fallback: EventLoop? = nil) {
        guard !loop.shuttingDown else {
            if let fallback {
                fallback.execute { serve(fd, peer: peer, on: fallback, state: state) }
            } else {
                Glibc.close(fd)
                state.connectionClosed()
            }
            return
        }
        do {
            loop.add(try Connection(fd: fd, peer: peer, loop: loop, server: state))
            loop.logger.debug("connection accepted", metadata: ["peer": "\(peer)"])
        } catch {
            loop.logger.error("cannot set up connection", metadata: ["peer": "\(peer)", "error": "\(error)"])
            Glibc.close(fd)
            state.connectionClosed()
        }
    }
}
