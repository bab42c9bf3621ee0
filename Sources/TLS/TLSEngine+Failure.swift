internal import COpenSSL

extension TLSEngine {
    /// Records a fatal error (later calls rethrow it) and returns it to throw.
    func fail(_ kind: TLSError.Kind, _ message: String, code: Int32) -> TLSError {
        var detail = "\(message) (\(Self.name(ofSSLError: code)))"
        // Only when we checked the peer: without verification the result is
        // meaningless (e.g. "self-signed") and would mislead.
        let verifyResult = SSL_get_verify_result(ssl)
        if SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER != 0, verifyResult != Int(X509_V_OK) {
            detail += ", certificate verification: \(String(cString: X509_verify_cert_error_string(verifyResult)))"
        }
        let error = OpenSSLErrorQueue.error(kind, detail)
        phase = .failed(error)
        pendingPlaintext = []
        return error
    }

    static func name(ofSSLError code: Int32) -> String {
        switch code {
        case SSL_ERROR_SSL: "SSL_ERROR_SSL"
        case SSL_ERROR_SYSCALL: "SSL_ERROR_SYSCALL"
        case SSL_ERROR_ZERO_RETURN: "peer sent close_notify"
        case SSL_ERROR_WANT_READ: "SSL_ERROR_WANT_READ"
        case SSL_ERROR_WANT_WRITE: "SSL_ERROR_WANT_WRITE"
        default: "SSL error \(code)"
        }
    }
}
