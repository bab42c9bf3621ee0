public import GRPC
public import TLS

/// How the server listens and which limits it enforces beyond the gRPC layer's.
public struct ServerConfiguration: Sendable {
    public var listen: SocketAddress
    /// Event-loop threads; each owns its connections. Default: one per core.
    public var threads: Int
    /// TLS with ALPN h2 when set; cleartext h2c with prior knowledge otherwise.
    public var tls: TLSContext?
    /// Open connections across all loops; beyond it new ones are closed at
    /// accept, so a connection flood cannot exhaust file descriptors.
    public var maxConnections: Int = 10_000
    /// A connection with no call in progress and no bytes for this long is
    /// closed with GOAWAY (covers clients that connect and never speak).
    public var idleTimeoutNanos: UInt64 = 300 * 1_000_000_000
    /// A call whose request has not finished arriving this long after its
    /// headers is ended (DEADLINE_EXCEEDED, REQUEST_TIMEOUT) and its stream
    /// reset: a peer cannot hold buffers and call slots by never finishing.
    public var requestTimeoutNanos: UInt64 = 30 * 1_000_000_000
    /// A connection whose peer has not sent its HTTP/2 preface and SETTINGS
    /// (after TLS) this long after it was accepted is closed: a peer that
    /// connects and says nothing (or stalls the TLS handshake) held a
    /// connection slot for the whole idle timeout.
    public var handshakeTimeoutNanos: UInt64 = 10 * 1_000_000_000
    /// Bytes waiting to be written to one socket before we stop reading from
    /// it: a client that does not read its responses cannot grow our memory.
    public var maxPendingOutputBytes: Int = 8 << 20
    public var grpc = GRPCServerConfiguration()

    public init(listen: SocketAddress, threads: Int, tls: TLSContext? = nil) {
        self.listen = listen
        self.threads = max(1, threads)
        self.tls = tls
    }
}
