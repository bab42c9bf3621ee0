internal import COpenSSL

extension TLSEngine {
    /// The protocol chosen with ALPN ("h2"), or nil before the handshake or without ALPN.
    public var negotiatedALPN: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// "TLSv1.3" or "TLSv1.2" once the handshake is complete; nil before.
    public var negotiatedProtocolVersion: String? {
        guard isHandshakeComplete else { return nil }
        return String(cString: SSL_get_version(ssl))
    }

    /// The peer certificate's subject in RFC 2253 form ("CN=client,O=Example"),
    /// or nil when the peer sent none. On a server this is the verified
    /// client identity when the context requires client certificates.
    public var peerCertificateSubject: String? {
        guard let certificate = SSL_get0_peer_certificate(ssl),
            let name = X509_get_subject_name(certificate),
            let bio = BIO_new(BIO_s_mem())
        else { return nil }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, billing_XN_FLAG_RFC2253()) >= 0 else { return nil }
        let length = BIO_ctrl_pending(bio)
        var bytes = [UInt8](repeating: 0, count: length)
        var count = 0
        guard BIO_read_ex(bio, &bytes, length, &count) == 1 || length == 0 else { return nil }
        return String(decoding: bytes[..<count], as: UTF8.self)
    }
}
