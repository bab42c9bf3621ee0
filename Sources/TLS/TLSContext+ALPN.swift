internal import COpenSSL

extension TLSContext {
    /// The only application protocol we speak: HTTP/2 over TLS (RFC 9113 §3.2).
    static let http2 = "h2"

    /// Server side: select "h2" or fail the handshake.
    ///
    /// A client that offers ALPN without "h2" gets a fatal
    /// no_application_protocol alert (RFC 7301 §3.2). A client that sends no
    /// ALPN extension at all is refused the same way from the ClientHello
    /// callback, since OpenSSL calls the select callback only when the
    /// extension is present; gRPC clients always offer "h2".
    /// Both callbacks capture nothing and only read their arguments.
    static func installServerALPN(_ ctx: OpaquePointer) {
        SSL_CTX_set_alpn_select_cb(
            ctx,
            { _, selected, selectedLength, offered, offeredLength, _ in
                guard let selected, let selectedLength, let offered else { return SSL_TLSEXT_ERR_ALERT_FATAL }
                // The offer is a list of length-prefixed names.
                let count = Int(offeredLength)
                var index = 0
                while index < count {
                    let length = Int(offered[index])
                    let start = index + 1
                    guard length > 0, start + length <= count else { break }  // malformed: refuse
                    if length == 2, offered[start] == UInt8(ascii: "h"), offered[start + 1] == UInt8(ascii: "2") {
                        // Points into the offer, which outlives the callback.
                        selected.pointee = offered + start
                        selectedLength.pointee = 2
                        return SSL_TLSEXT_ERR_OK
                    }
                    index = start + length
                }
                return SSL_TLSEXT_ERR_ALERT_FATAL  // sends no_application_protocol
            }, nil)

        SSL_CTX_set_client_hello_cb(
            ctx,
            { ssl, alert, _ in
                var data: UnsafePointer<UInt8>?
                var length = 0
                let alpn = UInt32(TLSEXT_TYPE_application_layer_protocol_negotiation)
                if SSL_client_hello_get0_ext(ssl, alpn, &data, &length) == 1 {
                    return SSL_CLIENT_HELLO_SUCCESS
                }
                alert?.pointee = SSL_AD_NO_APPLICATION_PROTOCOL
                return SSL_CLIENT_HELLO_ERROR
            }, nil)
    }

    /// Client side: offer `protocols` in ALPN wire format (length-prefixed names).
    static func offerALPN(_ ctx: OpaquePointer, _ protocols: [String]) throws {
        guard !protocols.isEmpty else { return }
        var wire: [UInt8] = []
        for name in protocols {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSError(kind: .configuration, message: "ALPN protocol name must be 1-255 bytes: \"\(name)\"")
            }
            wire.append(UInt8(bytes.count))
            wire += bytes
        }
        // Returns 0 on success, unlike the rest of OpenSSL.
        guard SSL_CTX_set_alpn_protos(ctx, wire, UInt32(wire.count)) == 0 else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot set ALPN protocols \(protocols)")
        }
    }
}
