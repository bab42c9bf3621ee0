public import HTTP2

/// Limits of the gRPC layer, each explicit. Defaults follow gRPC's own.
public struct GRPCServerConfiguration: Sendable {
    /// Largest request message accepted (gRPC's default receive limit is 4 MiB).
    /// Larger messages are refused with RESOURCE_EXHAUSTED before they are buffered.
    public var maxReceiveMessageSize: Int = 4 << 20
    /// Request bytes a connection may hold buffered across all its streams;
    /// beyond it the peer is flooding memory and the connection is closed.
    public var maxBufferedRequestBytes: Int = 64 << 20
    /// Handlers a connection may have running, including ones whose streams the
    /// client already reset (their tasks are cancelled but may still be
    /// finishing). Bounds the work a rapid-reset client can queue.
    public var maxRunningHandlersPerConnection: Int = 1024
    /// HTTP/2 limits: streams, header size, windows, flood thresholds.
    public var http2 = HTTP2Limits()
    /// Where calls are counted and timed; nil records nothing.
    public var metrics: GRPCServerMetrics?

    public init() {}
}
