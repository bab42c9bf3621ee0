internal import CNGHTTP2

extension HTTP2Session {
    /// Server: answers a stream. With neither body nor trailers the header
    /// block ends the stream (a gRPC "trailers-only" response).
    public func sendResponse(
        streamID: Int32, headers: [HTTP2Header], body: [UInt8]? = nil, trailers: [HTTP2Header]? = nil
    ) throws {
        precondition(role == .server, "sendResponse on a client session")
        try requireOpen(streamID)
        let rc: Int32
        if body == nil && trailers == nil {
            rc = withNameValues(headers) { nva, count in
                nghttp2_submit_response(session, streamID, nva, count, nil)
            }
        } else {
            outbound[streamID] = OutboundBody(bytes: body ?? [], trailers: trailers.map { HTTP2PreparedHeaders($0) })
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readBody)
            rc = withNameValues(headers) { nva, count in
                nghttp2_submit_response(session, streamID, nva, count, &provider)
            }
            if rc != 0 { outbound[streamID] = nil }
        }
        guard rc == 0 else { throw HTTP2Error.submitFailed("submit_response(\(streamID)): \(Self.describe(rc))") }
    }

    /// Server: the common case, with headers and trailers prepared once.
    /// `head`: `headCount` (at most eight) bytes sent before `body`, the
    /// first in the lowest byte (a gRPC message's prefix, not copied in
    /// front of the message).
    public func sendResponse(
        streamID: Int32, headers: HTTP2PreparedHeaders, head: UInt64 = 0, headCount: Int = 0, body: [UInt8],
        trailers: HTTP2PreparedHeaders
    ) throws {
        precondition(role == .server, "sendResponse on a client session")
        try requireOpen(streamID)
        outbound[streamID] = OutboundBody(head: head, headCount: headCount, bytes: body, trailers: trailers)
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readBody)
        let rc = nghttp2_submit_response(session, streamID, headers.nameValues, headers.count, &provider)
        guard rc == 0 else {
            outbound[streamID] = nil
            throw HTTP2Error.submitFailed("submit_response(\(streamID)): \(Self.describe(rc))")
        }
    }

    /// A stream nghttp2 has closed (a reset in the same read as its request)
    /// takes no response: submitted, it would be dropped unsent and its
    /// body kept here for good.
    func requireOpen(_ streamID: Int32) throws {
        guard nghttp2_session_find_stream(session, streamID) != nil else {
            throw HTTP2Error.submitFailed("stream \(streamID) is closed")
        }
    }

    /// Bytes of a stream's response body handed to nghttp2 so far (nil: none
    /// queued, or all of it sent).
    public func sentResponseBytes(_ streamID: Int32) -> Int? { outbound[streamID]?.offset }

    /// Client: opens a stream with `headers` and sends `body`, ending the
    /// stream after it. Returns the new stream's id.
    @discardableResult
    public func sendRequest(headers: [HTTP2Header], body: [UInt8]) throws -> Int32 {
        precondition(role == .client, "sendRequest on a server session")
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readBody)
        let streamID = withNameValues(headers) { nva, count in
            nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        }
        guard streamID > 0 else {
            throw HTTP2Error.submitFailed("submit_request: \(Self.describe(streamID))")
        }
        outbound[streamID] = OutboundBody(bytes: body, trailers: nil)
        return streamID
    }

    /// Client: opens a stream with its request headers and nothing after
    /// them (no END_STREAM): a request whose body never comes (tests).
    public func sendRequestHead(headers: [HTTP2Header]) throws -> Int32 {
        precondition(role == .client, "sendRequestHead on a server session")
        let streamID = withNameValues(headers) { nva, count in
            nghttp2_submit_headers(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), -1, nil, nva, count, nil)
        }
        guard streamID > 0 else {
            throw HTTP2Error.submitFailed("submit_headers: \(Self.describe(streamID))")
        }
        return streamID
    }

    /// Client: the body of a stream opened by `sendRequestHead`, ending it
    /// (tests: requests whose bodies come later).
    public func sendBody(streamID: Int32, body: [UInt8]) throws {
        precondition(role == .client, "sendBody on a server session")
        outbound[streamID] = OutboundBody(bytes: body, trailers: nil)
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readBody)
        let rc = nghttp2_submit_data(session, UInt8(NGHTTP2_FLAG_END_STREAM.rawValue), streamID, &provider)
        guard rc == 0 else {
            outbound[streamID] = nil
            throw HTTP2Error.submitFailed("submit_data(\(streamID)): \(Self.describe(rc))")
        }
    }

    /// Opens a stream's receive window by `bytes` (WINDOW_UPDATE): a reader
    /// that takes a response slowly (tests).
    public func grantWindow(streamID: Int32, bytes: Int32) {
        _ = nghttp2_submit_window_update(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, bytes)
    }

    /// Client: sends a PING (for tests and keepalive).
    public func ping() {
        _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }
}
