import HTTP2
public import Logging
import Synchronization

/// One gRPC connection: HTTP/2 events in, calls dispatched to handlers,
/// responses out. Confined to its loop's thread; handlers run as tasks and
/// come back through `GRPCLoop.execute`.
public final class GRPCServerConnection {
    let http2: HTTP2Session
    let router: GRPCRouter
    let configuration: GRPCServerConfiguration
    let loop: any GRPCLoop
    let peer: String
    let logger: Logger
    public weak var host: (any GRPCConnectionHost)?

    var calls: [Int32: Call] = [:]
    /// Streams refused at their headers (405, 415, a gRPC status) whose
    /// request has not ended, and when: reset a request timeout later, or
    /// a peer could keep sending on them for good.
    var refusedOpen: [Int32: UInt64] = [:]
    /// The previous call's path and route: the next call's usually.
    var lastRoute: (path: String, method: GRPCMethod, admission: GRPCAdmission?)?
    var runningHandlers = 0
    /// When a call last started or ended here (loop clock; 0: none yet).
    /// A connection is idle from then, whatever other frames arrive: a peer
    /// sending a byte of a PING or an empty SETTINGS now and then held its
    /// connection (and a slot under `--max-connections`) for good.
    public internal(set) var lastCallNanos: UInt64 = 0
    /// Request bytes held across this connection's streams; every change
    /// is mirrored into the server-wide `requestBuffer`.
    var bufferedRequestBytes = 0 {
        didSet { configuration.requestBuffer?.add(bufferedRequestBytes - oldValue) }
    }
    public private(set) var isClosed = false
    public private(set) var isDraining = false

    final class Call {
        let streamID: Int32
        let path: String
        let method: GRPCMethod
        let metadata: HTTP2HeaderBlock
        let deadlineNanos: UInt64?
        /// When the request headers arrived (loop clock), for the latency metric.
        let startedNanos: UInt64
        var deframer: GRPCMessageDeframer
        /// The request message, complete, until the stream ends.
        var message: GRPCMessageDeframer.Message?
        /// Its bytes, which count as buffered until it goes to its handler.
        var heldMessageBytes: Int { message?.bytes.count ?? 0 }
        /// Its header block's size (RFC 9113's list size), counted as
        /// buffered too until the handler takes the call: HPACK lets a peer
        /// send a 16 KiB block as a few bytes of references, so streams
        /// holding headers alone could fill memory outside both limits.
        var heldHeaderBytes = 0
        /// What the method's admission returned at the headers.
        var admitted: (any Sendable)?
        var timer: GRPCTimerID?
        var task: Task<Void, Never>?
        /// Set when the request went to its handler.
        var dispatched = false
        /// Set once a response (success or status) was given: nothing else
        /// answers it, no handler runs for it (also when the stream was
        /// already gone and the answer could not be submitted).
        var responded = false
        /// Set once it is counted in grpc_server_handled_total: with the
        /// status it was answered with if that was submitted, else
        /// CANCELLED when it is forgotten.
        var counted = false
        /// When it was, or when its body last moved on (loop clock): a
        /// response that has not moved for a request timeout is stuck
        /// behind the peer's flow control.
        var answeredNanos: UInt64 = 0
        /// Its body's bytes sent as of the last sweep (-1: none queued).
        var sentAtSweep = -1

        init(streamID: Int32, path: String, method: GRPCMethod,
             metadata: HTTP2HeaderBlock, deadlineNanos: UInt64?, startedNanos: UInt64, maxMessageSize: Int) {
            self.streamID = streamID
            self.path = path
            self.method = method
            self.metadata = metadata
            self.deadlineNanos = deadlineNanos
            self.startedNanos = startedNanos
            self.deframer = GRPCMessageDeframer(maxMessageSize: maxMessageSize)
        }
    }

    /// Bytes of answers queued for the peer (see `unreadAnswersRefusal`).
    public var heldResponseBytes: Int { http2.heldBodyBytes }

    public init(router: GRPCRouter, configuration: GRPCServerConfiguration, loop: any GRPCLoop,
                peer: String, logger: Logger) throws {
        self.http2 = try HTTP2Session(role: .server, limits: configuration.http2)
        if let budget = configuration.responseBuffer { http2.heldBodyBytesChanged = { budget.add($0) } }
        self.router = router
        self.configuration = configuration
        self.loop = loop
        self.peer = peer
        self.logger = logger
    }

    // MARK: Bytes in and out

    /// Feeds bytes from the peer. Throws when the connection must end after
    /// its pending output (a GOAWAY) is flushed.
    public func receive(_ bytes: UnsafeRawBufferPointer) throws {
        let events = try http2.receive(bytes, now: loop.nowNanos)
        do {
            for event in events {
                try handle(event)
            }
            try checkRequestBudget()
        } catch HTTP2Error.enhanceYourCalm(let reason) {
            // A limit of this layer (request bytes buffered): the peer is
            // told why, and which streams were processed, before the close.
            http2.terminate(errorCode: 0xB)
            throw HTTP2Error.enhanceYourCalm(reason)
        }
    }

    /// As `HTTP2Session.drainOutput`: true when it stopped at `limit`.
    @discardableResult
    public func drainOutput(into buffer: inout [UInt8], upTo limit: Int = .max) throws -> Bool {
        let stopped = try http2.drainOutput(into: &buffer, upTo: limit)
        // A stream closes when its last frame is sent: forget its call now,
        // not when (if ever) the peer sends more bytes.
        for event in http2.takeEvents() {
            try handle(event)
        }
        return stopped
    }

    /// False once the connection has nothing left to do and can be closed.
    public var isActive: Bool { !isClosed && http2.isActive }

    /// Whether the peer has begun HTTP/2 (its preface and SETTINGS arrived).
    public var peerIsSpeakingHTTP2: Bool { http2.peerSettingsReceived }

    /// Streams with a call in progress.
    public var openCallCount: Int { calls.count }

    /// Graceful shutdown (`HTTP2Session.beginShutdown`: two GOAWAYs a round
    /// trip apart): calls in progress finish, and so do those the peer sent
    /// before it heard; later ones are refused. `twoStep` false: one final
    /// GOAWAY now (the peer sends nothing more, or the connection closes
    /// right after).
    public func beginGracefulShutdown(twoStep: Bool = true) {
        guard !isDraining else {
            if !twoStep { http2.finishShutdown() }
            return
        }
        isDraining = true
        http2.beginShutdown(twoStep: twoStep)
    }

    /// The final GOAWAY of a two-step shutdown now, if its PING's ACK has
    /// not come back (`HTTP2Session.finishShutdown`).
    public func finishGracefulShutdown() {
        http2.finishShutdown()
    }

    /// The peer will send nothing more (its TCP FIN): the calls whose
    /// requests arrived are answered as usual; those still waiting for
    /// request bytes, or answered before their request ended, never will
    /// be complete and are reset; GOAWAY, so that HTTP/2 is done (and the
    /// connection closes) once the last answer is out.
    public func peerFinishedSending() {
        beginGracefulShutdown(twoStep: false)
        for (streamID, call) in calls where !call.dispatched {
            http2.resetStream(streamID, errorCode: 0x8)  // CANCEL
            forget(streamID)
        }
        for streamID in refusedOpen.keys { http2.resetStream(streamID, errorCode: 0) }
        refusedOpen.removeAll()
    }

    deinit {
        configuration.requestBuffer?.add(-bufferedRequestBytes)  // 0 once closed
    }

    /// Closes at once (idle timeout, drain deadline, socket error): cancels
    /// every running handler and timer.
    public func close(errorCode: UInt32 = 0) {
        guard !isClosed else { return }
        http2.terminate(errorCode: errorCode)
        for call in calls.values {
            call.task?.cancel()
            if let timer = call.timer { loop.cancel(timer) }
            recordUnanswered(call)
        }
        configuration.metrics?.openCalls.subtract(calls.count, ordering: .relaxed)
        calls.removeAll()
        refusedOpen.removeAll()
        bufferedRequestBytes = 0  // released from the server-wide budget
        isClosed = true
    }

    /// Removes a call from the table: its timer, buffered bytes and (if
    /// unanswered) its handler go with it.
    func forget(_ streamID: Int32) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        lastCallNanos = loop.nowNanos
        configuration.metrics?.openCalls.subtract(1, ordering: .relaxed)
        bufferedRequestBytes -= call.deframer.bufferedCount + call.heldMessageBytes + call.heldHeaderBytes
        if let timer = call.timer { loop.cancel(timer) }
        if !call.responded { call.task?.cancel() }
        recordUnanswered(call)
    }

    /// A call that ends without an answer (its client reset the stream, the
    /// connection closed) is counted as CANCELLED — what the client saw —,
    /// so that every call begun is counted once in grpc_server_handled_total
    /// (session 28: such calls were not counted at all).
    private func recordUnanswered(_ call: Call) {
        guard !call.counted else { return }
        call.counted = true
        configuration.metrics?.record(path: call.path, code: .cancelled, nanos: loop.nowNanos &- call.startedNanos)
    }

    // MARK: Events

    func handle(_ event: HTTP2Event) throws {
        switch event {
        case let .headers(streamID, headers, endStream):
            if calls[streamID] == nil, !startCall(streamID: streamID, headers: headers), !endStream {
                refusedOpen[streamID] = loop.nowNanos
            }
            if endStream { finishRequest(streamID) }
        case let .data(streamID, bytes):
            try receiveData(streamID: streamID, bytes: bytes)
        case let .endStream(streamID):
            refusedOpen[streamID] = nil
            finishRequest(streamID)
        case let .streamClosed(streamID, _):
            refusedOpen[streamID] = nil
            forget(streamID)
        case .headerListTooLarge(let streamID):
            logger.debug("header list too large; stream reset", metadata: ["peer": "\(peer)", "stream": "\(streamID)"])
        case .goAway:
            break
        }
    }
}
