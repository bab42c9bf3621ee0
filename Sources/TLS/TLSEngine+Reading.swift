internal import COpenSSL

extension TLSEngine {
    /// Hands bytes from the network to the engine. Nothing is decrypted
    /// until `readPlaintext`. Bytes after a failure or close_notify are dropped.
    public func receiveCiphertext(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty, !receivedCloseNotify else { return }
        if case .failed = phase { return }
        var written = 0
        // A memory BIO grows as needed; it fails only when malloc does.
        let ok = BIO_write_ex(networkIn, bytes.baseAddress, bytes.count, &written)
        precondition(ok == 1 && written == bytes.count, "memory BIO write failed")
    }

    public func receiveCiphertext(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { receiveCiphertext($0) }
    }

    /// Runs the handshake as far as the received bytes allow, then decrypts
    /// all complete records, appending their plaintext to `plaintext`.
    /// Returns once every received byte is consumed; a record split across
    /// calls is kept until its remainder arrives.
    ///
    /// Throws `TLSError` (`.handshake` or `.connection`) on bad input, a
    /// fatal alert from the peer, a failed certificate check or no common
    /// protocol; the engine is then dead, and `drainCiphertext` may hold the
    /// alert to send before closing.
    public func readPlaintext(into plaintext: inout [UInt8]) throws -> ReadState {
        if case .failed(let error) = phase { throw error }
        if receivedCloseNotify { return .closed }
        if case .handshaking = phase {
            guard try advanceHandshake() else { return .handshaking }
        }
        return try withUnsafeTemporaryAllocation(byteCount: Self.chunkSize, alignment: 1) { chunk in
            // Stop as soon as neither OpenSSL nor the input BIO holds a byte.
            while SSL_has_pending(ssl) == 1 || BIO_ctrl_pending(networkIn) > 0 {
                OpenSSLErrorQueue.clear()
                var count = 0
                if SSL_read_ex(ssl, chunk.baseAddress, chunk.count, &count) == 1 {
                    plaintext.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[..<count]))
                    continue
                }
                switch SSL_get_error(ssl, 0) {
                case SSL_ERROR_WANT_READ:
                    return .established  // a partial record: wait for the rest
                case SSL_ERROR_ZERO_RETURN:
                    receivedCloseNotify = true
                    return .closed
                case let code:
                    throw fail(.connection, "TLS read failed", code: code)
                }
            }
            return .established
        }
    }

    /// One step of the handshake. True when it has just completed (pending
    /// plaintext is then encrypted); false when it needs more input.
    func advanceHandshake() throws -> Bool {
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        guard result == 1 else {
            let code = SSL_get_error(ssl, result)
            if code == SSL_ERROR_WANT_READ { return false }
            throw fail(.handshake, "TLS handshake failed", code: code)
        }
        phase = .established
        isHandshakeComplete = true
        if !pendingPlaintext.isEmpty {
            defer { pendingPlaintext.removeAll() }
            try pendingPlaintext.withUnsafeBytes { try encrypt($0) }
        }
        return true
    }
}
