internal import CNGHTTP2

// nghttp2's callbacks. Each captures nothing, recovers the session from
// user_data, records what happened (an event or an error) and returns
// nghttp2's own codes; nothing here throws or calls user code.
extension HTTP2Session {
    static func owner(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session {
        Unmanaged<HTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    static func install(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            let this = HTTP2Session.owner(userData)
            this.currentBlock = HTTP2HeaderBlock()
            this.currentBlockStream = frame!.pointee.hd.stream_id
            return 0
        }

        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            let this = HTTP2Session.owner(userData)
            let streamID = frame!.pointee.hd.stream_id
            guard streamID == this.currentBlockStream else { return 0 }
            // RFC 9113 §6.5.2: a field costs its name, its value and 32 bytes.
            if this.currentBlock.listSize + nameLength + valueLength + 32 > this.limits.maxHeaderListSize {
                this.currentBlockStream = 0
                this.currentBlock = HTTP2HeaderBlock()
                this.events.append(.headerListTooLarge(streamID: streamID))
                // Our reset of the stream, provoked: counted with the peer's resets.
                if !this.resetBucket.take(now: this.now) {
                    this.callbackError = .enhanceYourCalm("oversized header block flood")
                    return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue
                }
                // nghttp2 resets the stream and skips the rest of the block.
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
            }
            this.currentBlock.append(
                name: UnsafeBufferPointer(start: name, count: nameLength),
                value: UnsafeBufferPointer(start: value, count: valueLength))
            return 0
        }

        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            let this = HTTP2Session.owner(userData)
            let hd = frame!.pointee.hd
            let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            let isAck = hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0
            switch UInt32(hd.type) {
            case NGHTTP2_HEADERS.rawValue:
                this.pingsSinceData = 0
                if this.currentBlockStream == hd.stream_id {
                    this.events.append(.headers(streamID: hd.stream_id, headers: this.currentBlock, endStream: endStream))
                    this.currentBlockStream = 0
                }
            case NGHTTP2_DATA.rawValue:
                this.pingsSinceData = 0
                if endStream { this.events.append(.endStream(streamID: hd.stream_id)) }
            case NGHTTP2_RST_STREAM.rawValue:
                if !this.resetBucket.take(now: this.now) {
                    this.callbackError = .enhanceYourCalm("RST_STREAM flood")
                    return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue
                }
            case NGHTTP2_PING.rawValue where isAck:
                if this.awaitingDrainPing, withUnsafeBytes(of: frame!.pointee.ping.opaque_data, { $0.elementsEqual(HTTP2Session.drainPing) }) {
                    this.awaitingDrainPing = false
                    this.drainPingAcked = true
                }
            case NGHTTP2_PING.rawValue where !isAck:
                this.pingsSinceData += 1
                if this.pingsSinceData > this.limits.pingsWithoutData {
                    this.callbackError = .enhanceYourCalm("PING flood")
                    return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue
                }
            case NGHTTP2_SETTINGS.rawValue where !isAck:
                this.peerSettingsReceived = true
                if !this.settingsBucket.take(now: this.now) {
                    this.callbackError = .enhanceYourCalm("SETTINGS flood")
                    return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue
                }
            case NGHTTP2_GOAWAY.rawValue:
                let goaway = frame!.pointee.goaway
                this.events.append(.goAway(lastStreamID: goaway.last_stream_id, errorCode: goaway.error_code))
            default:
                break
            }
            return 0
        }

        // A stream error of the peer's (nghttp2 answers it with RST_STREAM):
        // counted with the peer's own resets ("MadeYouReset" makes the
        // server reset streams instead, at the same cost to it).
        // (A stream past SETTINGS_MAX_CONCURRENT_STREAMS before the peer
        // acknowledged our SETTINGS, refused before anything of it runs, is
        // not counted: a client pipelining at once is not flooding.)
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks) { _, frame, libErrorCode, userData in
            guard libErrorCode != NGHTTP2_ERR_REFUSED_STREAM.rawValue else { return 0 }
            let this = HTTP2Session.owner(userData)
            let streamID = frame!.pointee.hd.stream_id
            if streamID != 0 { this.streamsInError.insert(streamID) }
            if !this.resetBucket.take(now: this.now) {
                this.callbackError = .enhanceYourCalm("stream error flood")
                return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue
            }
            return 0
        }

        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            _, _, streamID, data, length, userData in
            let this = HTTP2Session.owner(userData)
            this.events.append(.data(streamID: streamID, bytes: Array(UnsafeBufferPointer(start: data, count: length))))
            return 0
        }

        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            let this = HTTP2Session.owner(userData)
            this.outbound[streamID] = nil
            if this.currentBlockStream == streamID { this.currentBlockStream = 0 }
            if !this.streamsInError.isEmpty { this.streamsInError.remove(streamID) }
            this.events.append(.streamClosed(streamID: streamID, errorCode: errorCode))
            return 0
        }
    }

    /// The data provider's read callback: copies the next slice of the
    /// stream's outbound body; at the end either ends the stream or, when
    /// trailers are queued, submits them (nghttp2's documented way to send
    /// trailers after DATA).
    static let readBody: nghttp2_data_source_read_callback = {
        session, streamID, buffer, length, flags, _, userData in
        let this = HTTP2Session.owner(userData)
        guard let (count, done, trailers) = this.outbound.read(streamID, into: buffer!, length: length) else {
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        if done {
            flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            if let trailers {
                flags!.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                let rc = nghttp2_submit_trailer(session, streamID, trailers.nameValues, trailers.count)
                if rc != 0 { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
            }
        }
        return count
    }
}

/// Calls `body` with an nghttp2_nv array for `headers`. nghttp2 copies names
/// and values during the submit call, so the storage only lives for the call.
func withNameValues<R>(_ headers: [HTTP2Header], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
    var storage: [UInt8] = []
    storage.reserveCapacity(headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count })
    var spans: [(Int, Int, Int, Int)] = []
    spans.reserveCapacity(headers.count)
    for header in headers {
        let nameStart = storage.count
        storage.append(contentsOf: header.name.utf8)
        let valueStart = storage.count
        storage.append(contentsOf: header.value.utf8)
        spans.append((nameStart, valueStart - nameStart, valueStart, storage.count - valueStart))
    }
    if storage.isEmpty { storage.append(0) }  // a valid base address for empty values
    return storage.withUnsafeMutableBufferPointer { bytes in
        let base = bytes.baseAddress!
        var nva = spans.map { span in
            nghttp2_nv(
                name: base + span.0, value: base + span.2, namelen: span.1, valuelen: span.3,
                flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
        }
        return nva.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    }
}
