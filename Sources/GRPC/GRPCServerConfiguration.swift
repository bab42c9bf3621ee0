public import HTTP2
import Synchronization

/// Bytes held across every connection of a server (each connection's own
/// count is bounded too), so many connections each under their own limit
/// cannot together exhaust memory: request bytes buffered (the connection
/// whose bytes pass the limit is closed, GOAWAY `ENHANCE_YOUR_CALM`), or
/// answers queued for peers that do not read them (an answer that would
/// pass the limit is refused, `RESPONSES_NOT_READ`).
public final class BufferBudget: Sendable {
    public let limit: Int
    private let held = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// Bytes buffered now, across connections.
    public var used: Int { held.load(ordering: .relaxed) }

    /// Adds `delta` (negative: released); the new total.
    @discardableResult
    func add(_ delta: Int) -> Int {
        held.wrappingAdd(delta, ordering: .relaxed).newValue
    }
}

/// Limits of the gRPC layer, each explicit. Defaults follow gRPC's own.
public struct GRPCServerConfiguration: Sendable {
    /// Largest request message accepted (gRPC's default receive limit is 4 MiB).
    /// Larger messages are refused with RESOURCE_EXHAUSTED before they are buffered.
    public var maxReceiveMessageSize: Int = 4 << 20
    /// Request bytes a connection may hold buffered across all its streams;
    /// beyond it the peer is flooding memory and the connection is closed.
    public var maxBufferedRequestBytes: Int = 64 << 20
    /// The server-wide bound on buffered request bytes, shared by its
    /// connections (nil: none, as in tests of one connection).
    public var requestBuffer: BufferBudget?
    /// Answer bytes a connection may hold queued for a peer that does not
    /// take them (its flow-control windows shut): past it an answer is
    /// refused, RESOURCE_EXHAUSTED `RESPONSES_NOT_READ`, its bytes dropped
    /// (a connection holding nothing always gets its answer).
    public var maxHeldResponseBytes: Int = 64 << 20
    /// The server-wide bound on those bytes (nil: none).
    public var responseBuffer: BufferBudget?
    /// Handlers a connection may have running, including ones whose streams the
    /// client already reset (their tasks are cancelled but may still be
    /// finishing). Bounds the work a rapid-reset client can queue.
    public var maxRunningHandlersPerConnection: Int = 1024
    /// The longest a call may run, from its headers, whatever its
    /// `grpc-timeout` (a handler that never answered — a payment gateway
    /// that hangs — held its stream, a handler slot and its connection for
    /// good). Checked by the once-a-second sweep (`expireStalledRequests`),
    /// not with a timer per call; answered DEADLINE_EXCEEDED, reason
    /// CALL_TIMEOUT, the handler cancelled. nil: no limit.
    public var maxCallNanos: UInt64? = 300 * 1_000_000_000
    /// HTTP/2 limits: streams, header size, windows, flood thresholds.
    public var http2 = HTTP2Limits()
    /// Where calls are counted and timed; nil records nothing.
    public var metrics: GRPCServerMetrics?

    public init() {}
}
