/// Every limit the HTTP/2 layer enforces, set explicitly rather than left
/// to nghttp2's defaults. The numbers are defaults; the server may override.
public struct HTTP2Limits: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise. nghttp2 refuses streams
    /// beyond it with RST_STREAM(REFUSED_STREAM). 1,024 lets one channel carry
    /// a thousand concurrent unary calls without queueing in the client.
    public var maxConcurrentStreams: UInt32 = 1024
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce per header
    /// block (name + value + 32 bytes per field, as RFC 9113 counts it). A gRPC
    /// request's headers are a few hundred bytes; 16 KiB leaves room for tokens.
    public var maxHeaderListSize: Int = 16 * 1024
    /// SETTINGS_INITIAL_WINDOW_SIZE per stream: 1 MiB so a large message does
    /// not stall on WINDOW_UPDATE round trips.
    public var initialStreamWindow: Int32 = 1 << 20
    /// The connection-level receive window: 8 MiB, shared by all streams.
    public var connectionWindow: Int32 = 8 << 20
    /// SETTINGS frames we accept per connection before treating the peer as
    /// hostile (burst), refilled at `settingsPerSecond`.
    public var settingsBurst: Int = 100
    public var settingsPerSecond: Int = 10
    /// PING frames without any HEADERS or DATA between them. Keepalive and
    /// BDP pings come with traffic; a peer that only pings is flooding.
    public var pingsWithoutData: Int = 100
    /// RST_STREAM frames received, and stream errors the peer provokes (each
    /// answered with our RST_STREAM: a WINDOW_UPDATE overflowing a stream's
    /// window, a frame on a closed stream): burst and refill rate, shared. A
    /// client that opens and resets streams faster than this is the 2023
    /// "rapid reset" attack (CVE-2023-44487), one that makes the server
    /// reset them is "MadeYouReset" (CVE-2025-8671); the connection is closed
    /// with ENHANCE_YOUR_CALM. The burst is twice `maxConcurrentStreams`: a
    /// client may cancel every call it has in flight at once, and again
    /// (session 29: 1,000 against 1,024 streams — a client cancelling its
    /// 1,022 calls had the connection closed, its other calls failing).
    public var resetBurst: Int = 2048
    public var resetsPerSecond: Int = 200
    /// Queued control-frame ACKs (PING/SETTINGS) we hold for a peer that does
    /// not read; nghttp2 fails the session beyond this.
    public var maxOutboundAcks: Int = 1000
    /// Entries accepted in one SETTINGS frame.
    public var maxSettingsEntries: Int = 32

    /// Whether received DATA reopens the windows by itself (nghttp2's
    /// automatic WINDOW_UPDATE); off, only `grantWindow` does (tests of a
    /// slow reader).
    public var automaticWindowUpdates = true

    public init() {}
}
