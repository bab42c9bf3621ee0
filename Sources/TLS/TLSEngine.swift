internal import COpenSSL

/// One TLS connection on memory buffers: ciphertext in from the network,
/// plaintext out, and back again. No sockets and no threads; confine an
/// instance to one thread (an event loop).
///
/// The loop, for each batch of bytes from the socket:
///
///     engine.receiveCiphertext(bytes)
///     let state = try engine.readPlaintext(into: &plaintext)   // may be empty
///     try engine.writePlaintext(response)                     // buffered until the handshake ends
///     engine.drainCiphertext(into: &socketOutput)             // always: handshake, data, alerts
///
/// `readPlaintext` consumes everything received so far; unless it returns
/// `.closed` the engine simply needs more input. When it throws, drain
/// ciphertext once more (it may hold an alert for the peer), then close.
public final class TLSEngine {
    /// What `readPlaintext` found once it had consumed all received bytes.
    public enum ReadState: Sendable, Hashable {
        /// The handshake is still running: send what `drainCiphertext` gives, wait for more input.
        case handshaking
        /// The handshake is done (possibly during this call): wait for more input.
        case established
        /// The peer sent close_notify: no more plaintext will arrive. Reply
        /// with `shutdown()` and close once the output is sent.
        case closed
    }

    enum Phase {
        case handshaking
        case established
        /// A fatal error: every later read or write rethrows it.
        case failed(TLSError)
    }

    let context: TLSContext
    let ssl: OpaquePointer
    /// Ciphertext from the peer, read by OpenSSL. Owned by `ssl`.
    let networkIn: OpaquePointer
    /// Ciphertext for the peer, written by OpenSSL. Owned by `ssl`.
    let networkOut: OpaquePointer
    var phase = Phase.handshaking
    /// Plaintext written before the handshake finished; sent when it does.
    var pendingPlaintext: [UInt8] = []
    var receivedCloseNotify = false
    /// True once the handshake has finished, even if the connection later failed or closed.
    public internal(set) var isHandshakeComplete = false
    var sentCloseNotify = false

    /// Plaintext and ciphertext move through the engine in chunks of this
    /// size: one maximal TLS record (RFC 8446 §5.1), on the stack.
    static let chunkSize = 16 * 1024

    /// A server engine waits for a ClientHello. A client engine has written
    /// its ClientHello when init returns: drain it and send it.
    public init(context: TLSContext) throws {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.ctx) else {
            throw OpenSSLErrorQueue.error(.configuration, "SSL_new failed")
        }
        guard let networkIn = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw OpenSSLErrorQueue.error(.configuration, "BIO_new failed")
        }
        guard let networkOut = BIO_new(BIO_s_mem()) else {
            BIO_free(networkIn)
            SSL_free(ssl)
            throw OpenSSLErrorQueue.error(.configuration, "BIO_new failed")
        }
        // An empty input buffer means "no bytes yet, retry", never end of stream.
        billing_BIO_set_mem_eof_return(networkIn, -1)
        SSL_set_bio(ssl, networkIn, networkOut)  // ssl now owns both
        self.context = context
        self.ssl = ssl
        self.networkIn = networkIn
        self.networkOut = networkOut

        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let name = context.sniHostName, billing_SSL_set_tlsext_host_name(ssl, name) != 1 {
                throw OpenSSLErrorQueue.error(.configuration, "cannot set SNI host name \(name)")
            }
            // Writes the ClientHello; fails now if no version or cipher is usable.
            _ = try advanceHandshake()
        }
    }

    deinit {
        SSL_free(ssl)  // frees both BIOs
    }
}

@available(*, unavailable, message: "a TLSEngine belongs to one thread")
extension TLSEngine: Sendable {}
