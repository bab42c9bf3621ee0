internal import COpenSSL

/// An OpenSSL SSL_CTX configured once and then shared by every connection of
/// a server (or of a client): build one at startup, hand it to each
/// `TLSEngine`. Immutable after init; OpenSSL locks what it changes later
/// (the session cache, reference counts), so it is safe from any thread.
public final class TLSContext: Sendable {
    enum Role: Sendable { case server, client }

    let role: Role
    /// Never mutated after init; OpenSSL makes concurrent SSL_new and
    /// session-cache use on one SSL_CTX thread-safe.
    nonisolated(unsafe) let ctx: OpaquePointer
    /// SNI for client engines: the configured server name unless it is an IP address.
    let sniHostName: String?

    /// A server context: certificate chain and key, optional client CA (mTLS).
    /// Throws `TLSError` (kind `.configuration`) naming the file that failed.
    public convenience init(server configuration: TLSServerConfiguration) throws {
        try self.init(role: .server, sniHostName: nil) { ctx in
            try Self.applyCommonSettings(ctx, minimum: .tls1_2, maximum: .tls1_3)
            try Self.applyServerSettings(ctx, configuration)
        }
    }

    /// A client context: which servers to trust, ALPN offer, optional client certificate.
    public convenience init(client configuration: TLSClientConfiguration) throws {
        let sni = configuration.bareServerName.flatMap { Self.isIPAddress($0) ? nil : $0 }
        try self.init(role: .client, sniHostName: sni) { ctx in
            try Self.applyCommonSettings(
                ctx, minimum: configuration.minimumVersion, maximum: configuration.maximumVersion)
            try Self.applyClientSettings(ctx, configuration)
        }
    }

    private init(role: Role, sniHostName: String?, configure: (OpaquePointer) throws -> Void) throws {
        OpenSSLErrorQueue.clear()
        let method = role == .server ? TLS_server_method() : TLS_client_method()
        guard let ctx = SSL_CTX_new(method) else {
            throw OpenSSLErrorQueue.error(.configuration, "SSL_CTX_new failed")
        }
        do {
            try configure(ctx)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        self.role = role
        self.ctx = ctx
        self.sniHostName = sniHostName
    }

    deinit {
        SSL_CTX_free(ctx)
    }

    static func isIPAddress(_ name: String) -> Bool {
        guard let address = a2i_IPADDRESS(name) else { return false }
        ASN1_OCTET_STRING_free(address)
        return true
    }
}
