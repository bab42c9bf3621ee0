/// What the peer did, as seen after one `receive` call. Events are values:
/// the session records them while nghttp2 parses, the caller acts on them
/// after `receive` returns, so no user code runs inside a C callback.
public enum HTTP2Event: Sendable, Equatable {
    /// A complete header block: request headers (server) or response
    /// headers/trailers (client). `endStream` is set when the block ended the stream.
    case headers(streamID: Int32, headers: HTTP2HeaderBlock, endStream: Bool)
    /// A chunk of a DATA frame's payload.
    case data(streamID: Int32, bytes: [UInt8])
    /// The peer half-closed the stream (END_STREAM on DATA).
    case endStream(streamID: Int32)
    /// The stream is gone: finished normally (errorCode 0) or reset by either side.
    case streamClosed(streamID: Int32, errorCode: UInt32)
    /// The peer's header block was larger than the limit; nghttp2 reset the stream.
    case headerListTooLarge(streamID: Int32)
    /// The peer sent GOAWAY.
    case goAway(lastStreamID: Int32, errorCode: UInt32)
}
