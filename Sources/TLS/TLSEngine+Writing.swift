internal import COpenSSL

extension TLSEngine {
    /// Encrypts `bytes` for the peer; `drainCiphertext` then returns the
    /// records. Before the handshake completes the bytes are kept and
    /// encrypted as soon as it does. Throws `.closed` after `shutdown()` or a
    /// failure, `.connection` if OpenSSL refuses.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) throws {
        if case .failed(let error) = phase { throw error }
        guard !sentCloseNotify else {
            throw TLSError(kind: .closed, message: "write after close_notify was sent")
        }
        guard !bytes.isEmpty else { return }
        switch phase {
        case .handshaking: pendingPlaintext.append(contentsOf: bytes)
        case .established: try encrypt(bytes)
        case .failed: preconditionFailure("checked above")
        }
    }

    public func writePlaintext(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writePlaintext($0) }
    }

    /// `writePlaintext` then `drainCiphertext(into:)`, `sliceSize` bytes at
    /// a time: OpenSSL's memory BIO keeps the largest size it ever held, so
    /// a burst of answers encrypted at once (4 MB) would stay allocated for
    /// the connection's life; in slices it never holds more than one.
    public func writePlaintext(_ bytes: [UInt8], drainingInto ciphertext: inout [UInt8]) throws {
        try bytes.withUnsafeBytes { all in
            var offset = 0
            repeat {
                let end = min(offset + Self.sliceSize, all.count)
                try writePlaintext(UnsafeRawBufferPointer(rebasing: all[offset..<end]))
                drainCiphertext(into: &ciphertext)
                offset = end
            } while offset < all.count
        }
    }

    /// Plaintext encrypted at once by `writePlaintext(_:drainingInto:)`:
    /// four maximal records.
    static let sliceSize = 4 * chunkSize

    /// Bytes the output BIO has allocated (tests: it must not keep a burst's size).
    var ciphertextBufferCapacity: Int {
        var memory: UnsafeMutablePointer<BUF_MEM>?
        _ = withUnsafeMutablePointer(to: &memory) { BIO_ctrl(networkOut, BIO_C_GET_BUF_MEM_PTR, 0, $0) }
        return memory.map { Int($0.pointee.max) } ?? 0
    }

    /// Appends every byte waiting for the network: handshake messages,
    /// application records, alerts, close_notify. Call after each
    /// read/write/shutdown, and once more after a thrown error.
    public func drainCiphertext(into ciphertext: inout [UInt8]) {
        var pending = BIO_ctrl_pending(networkOut)
        guard pending > 0 else { return }
        withUnsafeTemporaryAllocation(byteCount: Self.chunkSize, alignment: 1) { chunk in
            while pending > 0 {
                var count = 0
                let ok = BIO_read_ex(networkOut, chunk.baseAddress, min(pending, chunk.count), &count)
                precondition(ok == 1 && count > 0, "memory BIO read failed with \(pending) bytes pending")
                ciphertext.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[..<count]))
                pending -= count
            }
        }
    }

    /// Sends close_notify (drain and send it, then close the socket). No
    /// reply is awaited. Before the handshake completes there is nothing to
    /// close politely: later writes are refused and nothing is sent.
    public func shutdown() {
        guard !sentCloseNotify else { return }
        sentCloseNotify = true
        guard case .established = phase else { return }
        OpenSSLErrorQueue.clear()
        // 0: sent, the peer's has not arrived (fine, we do not wait);
        // 1: both sent; < 0: nothing more can be sent, and we are closing anyway.
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
    }

    /// Encrypts all of `bytes` into records in the output BIO.
    func encrypt(_ bytes: UnsafeRawBufferPointer) throws {
        OpenSSLErrorQueue.clear()
        var written = 0
        guard SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &written) == 1 else {
            throw fail(.connection, "TLS write failed", code: SSL_get_error(ssl, 0))
        }
        // The output BIO never blocks and partial writes are off, so all is written.
        precondition(written == bytes.count, "SSL_write_ex wrote \(written) of \(bytes.count) bytes")
    }
}
