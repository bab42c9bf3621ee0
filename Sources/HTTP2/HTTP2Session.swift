internal import CNGHTTP2

/// Errors from the HTTP/2 layer. A protocol violation by the peer ends the
/// connection; the caller sends what is pending (GOAWAY) and closes.
public enum HTTP2Error: Error, Sendable, Equatable {
    /// nghttp2 rejected the peer's bytes (bad preface, malformed frame, flood).
    case protocolViolation(String)
    /// The peer exceeded an abuse limit (pings, SETTINGS, resets).
    case enhanceYourCalm(String)
    /// A submit call failed: our bug or a stream that no longer exists.
    case submitFailed(String)
}

/// One HTTP/2 connection driven through nghttp2: bytes in, events out, bytes
/// to send. No sockets and no threads; confine an instance to one thread.
public final class HTTP2Session {
    public enum Role: Sendable { case server, client }

    public let role: Role
    let limits: HTTP2Limits
    // Set once in init (after self exists, since nghttp2 keeps a pointer to self).
    private(set) var session: OpaquePointer!

    /// Events recorded by the C callbacks during the current `receive`.
    var events: [HTTP2Event] = []
    /// `events` were handed out (by `receive` or `takeEvents`) and are
    /// cleared before new ones are collected. Events that arise while
    /// sending (a stream closing once its last frame is out) wait in
    /// `events` for the next hand-out: none is ever dropped.
    var eventsHandedOut = false
    /// The header block being received. HTTP/2 sends a block's HEADERS and
    /// CONTINUATION frames back to back, so there is at most one at a time.
    var currentBlock = HTTP2HeaderBlock()
    /// Its stream, or 0 when no block is being received.
    var currentBlockStream: Int32 = 0
    /// Response/request bodies being sent, by stream (read by the data provider).
    var outbound = OutboundBodies()
    /// Response bodies queued (tests: none may outlive its stream).
    public var queuedResponseCount: Int { outbound.count }
    /// Bytes the queued bodies hold: a body is held whole until its last
    /// byte is handed to nghttp2 or its stream closes — for a peer that
    /// keeps its flow-control windows shut, for as long as it likes.
    public var heldBodyBytes: Int { outbound.heldBytes }
    /// Told of every change of `heldBodyBytes` (its delta), and of the
    /// release of what is still held when the session goes: a server-wide
    /// budget's count.
    public var heldBodyBytesChanged: (@Sendable (Int) -> Void)? {
        get { outbound.changed }
        set { outbound.changed = newValue }
    }
    /// The first abuse or callback failure seen inside a C callback; thrown
    /// by `receive` once nghttp2 returns.
    var callbackError: HTTP2Error?
    var now: UInt64 = 0
    /// Set once the peer's first SETTINGS frame arrived (after its preface).
    public internal(set) var peerSettingsReceived = false
    var settingsBucket: TokenBucket
    var resetBucket: TokenBucket
    var pingsSinceData = 0
    /// Streams nghttp2 is resetting for an error of the peer's (an invalid
    /// frame on them), until they close: their requests are not served.
    var streamsInError: Set<Int32> = []

    /// Whether the peer broke HTTP/2's rules on `streamID`, which nghttp2
    /// then resets: a request complete on it must not go to its handler
    /// (the reset is the answer; a peer could otherwise get handlers run
    /// without ever reading a response).
    public func streamFailed(_ streamID: Int32) -> Bool {
        !streamsInError.isEmpty && streamsInError.contains(streamID)
    }

    /// The bodies by stream, and the bytes they hold between them.
    struct OutboundBodies {
        private var bodies: [Int32: OutboundBody] = [:]
        private(set) var heldBytes = 0
        var changed: (@Sendable (Int) -> Void)?

        subscript(streamID: Int32) -> OutboundBody? {
            get { bodies[streamID] }
            set {
                let delta = (newValue?.bytes.count ?? 0) - (bodies[streamID]?.bytes.count ?? 0)
                bodies[streamID] = newValue
                if delta != 0 {
                    heldBytes += delta
                    changed?(delta)
                }
            }
        }

        var count: Int { bodies.count }

        /// Copies the next slice of `streamID`'s body to `buffer`, in place
        /// (one lookup, no copy of the body out and back); nil without a
        /// body. A body whose last byte went is dropped (`done`), its
        /// trailers returned.
        mutating func read(_ streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int)
            -> (count: Int, done: Bool, trailers: HTTP2PreparedHeaders?)? {
            guard let index = bodies.index(forKey: streamID) else { return nil }
            let count = bodies.values[index].read(into: buffer, length: length)
            guard bodies.values[index].offset == bodies.values[index].total else { return (count, false, nil) }
            let trailers = bodies.values[index].trailers
            self[streamID] = nil
            return (count, true, trailers)
        }

        mutating func removeAll() {
            let held = heldBytes
            bodies.removeAll()
            heldBytes = 0
            if held != 0 { changed?(-held) }
        }
    }

    struct OutboundBody {
        /// Up to eight bytes sent before `bytes`, the first in the lowest
        /// byte (a gRPC message's prefix: the message is not copied behind it).
        var head: UInt64 = 0
        var headCount = 0
        var bytes: [UInt8]
        /// Bytes of head and body sent so far.
        var offset = 0
        var trailers: HTTP2PreparedHeaders?

        init(head: UInt64 = 0, headCount: Int = 0, bytes: [UInt8], trailers: HTTP2PreparedHeaders?) {
            precondition((0...8).contains(headCount), "a body's head is at most eight bytes")
            self.head = head
            self.headCount = headCount
            self.bytes = bytes
            self.trailers = trailers
        }

        var total: Int { headCount + bytes.count }

        /// Copies up to `length` of the bytes not sent yet to `buffer`; returns how many.
        mutating func read(into buffer: UnsafeMutablePointer<UInt8>, length: Int) -> Int {
            let count = min(length, total - offset)
            var written = 0
            while offset < headCount && written < count {
                buffer[written] = UInt8(truncatingIfNeeded: head >> (8 * UInt64(offset)))
                offset += 1
                written += 1
            }
            if written < count {
                let start = offset - headCount
                bytes.withUnsafeBufferPointer { source in
                    (buffer + written).update(from: source.baseAddress! + start, count: count - written)
                }
                offset += count - written
            }
            return count
        }
    }

    public init(role: Role, limits: HTTP2Limits = HTTP2Limits()) throws {
        self.role = role
        self.limits = limits
        self.settingsBucket = TokenBucket(burst: limits.settingsBurst, perSecond: limits.settingsPerSecond)
        self.resetBucket = TokenBucket(burst: limits.resetBurst, perSecond: limits.resetsPerSecond)

        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
            throw HTTP2Error.submitFailed("nghttp2_session_callbacks_new")
        }
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.install(callbacks)

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else {
            throw HTTP2Error.submitFailed("nghttp2_option_new")
        }
        defer { nghttp2_option_del(option) }
        // Queued PING/SETTINGS ACKs for a peer that never reads: fail the session beyond this.
        nghttp2_option_set_max_outbound_ack(option, limits.maxOutboundAcks)
        // Entries in one SETTINGS frame; more is a flood, not a configuration.
        nghttp2_option_set_max_settings(option, limits.maxSettingsEntries)
        // nghttp2's own rapid-reset limiter (Debian 12's CVE-2023-44487
        // backport in 1.52.0-1+deb12u1: burst 1000, 33/s) would answer
        // GOAWAY(INTERNAL_ERROR) first; set it looser than ours so ours decides
        // and the peer is told ENHANCE_YOUR_CALM.
        nghttp2_option_set_stream_reset_rate_limit(
            option, UInt64(limits.resetBurst) * 2, UInt64(limits.resetsPerSecond) * 2)
        // Our own header-block size check runs in on_header; nghttp2 still
        // caps what it will emit to the peer at 64 KiB.
        nghttp2_option_set_max_send_header_block_length(option, 64 * 1024)
        // A closed stream is gone at once (no priority tree is kept): a
        // response to it is refused at submission (`requireOpen`).
        nghttp2_option_set_no_closed_streams(option, 1)
        if !limits.automaticWindowUpdates { nghttp2_option_set_no_auto_window_update(option, 1) }
        // HPACK dynamic table for what we send: the RFC default, no more.
        nghttp2_option_set_max_deflate_dynamic_table_size(option, 4096)

        var created: OpaquePointer?
        // The session holds an unretained pointer to self; self owns the session
        // and deletes it in deinit, so the pointer never outlives its object.
        let userData = UnsafeMutableRawPointer(Unmanaged.passUnretained(self).toOpaque())
        let rc: Int32
        switch role {
        case .server: rc = nghttp2_session_server_new2(&created, callbacks, userData, option)
        case .client: rc = nghttp2_session_client_new2(&created, callbacks, userData, option)
        }
        guard rc == 0, let created else {
            throw HTTP2Error.submitFailed("nghttp2_session_new: \(Self.describe(rc))")
        }
        self.session = created

        let settings: [(Int32, UInt32)] = [
            (Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), limits.maxConcurrentStreams),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(limits.initialStreamWindow)),
            (Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), UInt32(limits.maxHeaderListSize)),
            // Server push is not part of gRPC.
            (Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), 0),
        ]
        var entries = settings.map { nghttp2_settings_entry(settings_id: $0.0, value: $0.1) }
        if role == .server {
            // A server must not send ENABLE_PUSH; drop it.
            entries.removeLast()
        }
        let settingsRC = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), entries, entries.count)
        guard settingsRC == 0 else { throw HTTP2Error.submitFailed("submit_settings: \(Self.describe(settingsRC))") }
        let windowRC = nghttp2_session_set_local_window_size(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, limits.connectionWindow)
        guard windowRC == 0 else { throw HTTP2Error.submitFailed("set_local_window_size: \(Self.describe(windowRC))") }
    }

    deinit {
        nghttp2_session_del(session)
        if outbound.heldBytes != 0 { outbound.changed?(-outbound.heldBytes) }
    }

    // MARK: Bytes in, events out

    /// Feeds bytes from the peer. Returns the events they produced, after
    /// any that arose while sending since the last hand-out. Throws when the
    /// connection must end; pending output (a GOAWAY) should still be sent
    /// before closing.
    public func receive(_ bytes: UnsafeRawBufferPointer, now: UInt64) throws -> [HTTP2Event] {
        clearHandedOutEvents()
        eventsHandedOut = true
        self.now = now
        guard let base = bytes.baseAddress, bytes.count > 0 else { return events }
        let consumed = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        if let error = callbackError {
            callbackError = nil
            if case .enhanceYourCalm = error {
                nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
            }
            throw error
        }
        if consumed < 0 {
            throw HTTP2Error.protocolViolation(Self.describe(Int32(truncatingIfNeeded: consumed)))
        }
        if drainPingAcked {
            drainPingAcked = false
            goAway()
        }
        return events
    }

    /// Convenience for tests and clients holding an array.
    public func receive(_ bytes: [UInt8], now: UInt64 = 0) throws -> [HTTP2Event] {
        try bytes.withUnsafeBytes { try receive($0, now: now) }
    }

    /// Events that arose since the last hand-out without bytes from the peer:
    /// streams closed by sending their last frame (`drainOutput`).
    public func takeEvents() -> [HTTP2Event] {
        clearHandedOutEvents()
        eventsHandedOut = true
        return events
    }

    func clearHandedOutEvents() {
        if eventsHandedOut {
            events.removeAll(keepingCapacity: true)
            eventsHandedOut = false
        }
    }

    /// Appends every frame nghttp2 wants to send to `buffer`, or (`limit`)
    /// frames until `buffer` holds `limit` bytes or more: true then, and the
    /// rest stays in nghttp2 (where the answers' budget counts its bodies)
    /// for the next call. Streams this closes are reported by the next
    /// `takeEvents` or `receive`.
    @discardableResult
    public func drainOutput(into buffer: inout [UInt8], upTo limit: Int = .max) throws -> Bool {
        clearHandedOutEvents()
        while true {
            if buffer.count >= limit { return true }
            var pointer: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &pointer)
            if count < 0 {
                throw HTTP2Error.protocolViolation(Self.describe(Int32(truncatingIfNeeded: count)))
            }
            guard count > 0, let pointer else {
                // The first GOAWAY of a two-step shutdown is written: now its PING.
                guard drainPingAfterNotice else { return false }
                drainPingAfterNotice = false
                Self.drainPing.withUnsafeBufferPointer { _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), $0.baseAddress) }
                continue
            }
            buffer.append(contentsOf: UnsafeBufferPointer(start: pointer, count: count))
        }
    }

    /// False once both sides are done (GOAWAY exchanged, no streams left):
    /// the connection can be closed after the output is flushed.
    public var isActive: Bool {
        nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
    }

    public var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

    /// The highest stream id the peer opened that we processed.
    public var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(session) }

    // MARK: Streams and connection control

    /// Resets one stream (RST_STREAM with `errorCode`, e.g. 0x8 CANCEL).
    public func resetStream(_ streamID: Int32, errorCode: UInt32) {
        outbound[streamID] = nil
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// The opaque data of the PING a two-step shutdown sends.
    static let drainPing: [UInt8] = Array("drain-go".utf8)
    /// A two-step shutdown waits for its PING's ACK (`beginShutdown`).
    var awaitingDrainPing = false
    /// Its PING goes once the first GOAWAY is written: nghttp2 sends a
    /// PING (urgent) before a GOAWAY queued earlier, and a peer could then
    /// acknowledge it before reading that GOAWAY.
    var drainPingAfterNotice = false
    /// Its ACK arrived in the bytes being received: the final GOAWAY goes
    /// after them.
    var drainPingAcked = false

    /// Starts a graceful shutdown in RFC 9113's two steps (§6.8): a GOAWAY
    /// naming the largest stream id, so no stream is refused yet (those the
    /// peer sent before hearing of it are still served), with a PING; once
    /// the PING's ACK arrives — every stream the peer opened before it read
    /// the first GOAWAY has arrived by then — the GOAWAY naming the last
    /// stream served. One step sent that final GOAWAY at once, and a stream
    /// in flight towards us was refused unprocessed. `twoStep` false (the
    /// peer will send nothing more, so no ACK would come): the final one now.
    /// A second call (or one with `twoStep` false while the first waits)
    /// finishes it: `finishShutdown`.
    public func beginShutdown(twoStep: Bool = true) {
        guard twoStep, !awaitingDrainPing, nghttp2_submit_shutdown_notice(session) == 0 else {
            awaitingDrainPing = false
            drainPingAfterNotice = false
            goAway()
            return
        }
        awaitingDrainPing = true
        drainPingAfterNotice = true
    }

    /// The final GOAWAY now, if a two-step shutdown still waits for its
    /// PING's ACK (a peer that does not answer; one that closed its side).
    public func finishShutdown() {
        guard awaitingDrainPing else { return }
        awaitingDrainPing = false
        drainPingAfterNotice = false
        goAway()
    }

    /// Starts a graceful shutdown: GOAWAY naming the last stream we will
    /// serve. Streams already open finish; new ones are refused.
    public func goAway(errorCode: UInt32 = 0) {
        let last = lastProcessedStreamID
        goAwayLastStreamID = min(goAwayLastStreamID, last)
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0)
    }

    /// The last stream id a GOAWAY submitted names (`Int32.max`: none yet).
    var goAwayLastStreamID = Int32.max

    /// Whether a stream the peer opens is past the GOAWAY already submitted:
    /// nghttp2 refuses such streams only once that GOAWAY is written, and a
    /// read before then (a second read of the same turn) still delivers
    /// them — their calls would run, then be dropped unanswered when the
    /// GOAWAY went out, though it tells the peer they were not processed.
    public func isPastGoAway(_ streamID: Int32) -> Bool { streamID > goAwayLastStreamID }

    /// Ends the session with GOAWAY(`errorCode`); the bodies still queued
    /// will not be sent and are dropped.
    public func terminate(errorCode: UInt32) {
        _ = nghttp2_session_terminate_session(session, errorCode)
        outbound.removeAll()
    }

    static func describe(_ code: Int32) -> String {
        String(cString: nghttp2_strerror(code))
    }
}
