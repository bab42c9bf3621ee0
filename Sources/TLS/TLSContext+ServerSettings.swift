internal import COpenSSL

extension TLSContext {
    /// Sessions kept for TLS 1.2 resumption by session ID. Bounds memory
    /// (about 1-2 KiB each with a client certificate).
    static let serverSessionCacheSize = 10_000
    /// How long a session (ID or ticket) may be resumed: an hour, after which
    /// the client pays a full handshake and its certificate is checked again.
    static let serverSessionTimeoutSeconds = 3600
    /// TLS 1.3 tickets sent after a full handshake: OpenSSL's default, made
    /// explicit. Ticket keys are random per context, so a restart invalidates them.
    static let serverTicketsPerHandshake = 2
    /// Intermediate CAs allowed between a client certificate and its trust anchor.
    static let clientChainMaxDepth: Int32 = 4
    /// Names the sessions of this server; OpenSSL refuses to resume a session
    /// with a verified client certificate without one.
    static let sessionIDContext = Array("billing".utf8)

    static func applyServerSettings(_ ctx: OpaquePointer, _ configuration: TLSServerConfiguration) throws {
        try loadCertificate(ctx, configuration.certificate)

        // Resumption: stateful cache for TLS 1.2 session IDs, stateless tickets otherwise.
        billing_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_SERVER))
        billing_SSL_CTX_sess_set_cache_size(ctx, serverSessionCacheSize)
        SSL_CTX_set_timeout(ctx, serverSessionTimeoutSeconds)
        SSL_CTX_set_num_tickets(ctx, serverTicketsPerHandshake)
        guard SSL_CTX_set_session_id_context(ctx, sessionIDContext, UInt32(sessionIDContext.count)) == 1 else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot set session ID context")
        }

        installServerALPN(ctx)

        if let caFile = configuration.clientCAFile {
            try requireClientCertificates(ctx, caFile: caFile)
        } else {
            // No client certificates asked for: callers authenticate with tokens.
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
    }

    /// Mutual TLS: clients must present a certificate chaining to `caFile`.
    private static func requireClientCertificates(_ ctx: OpaquePointer, caFile: String) throws {
        guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot load client CA file \(caFile)")
        }
        // The CA names sent in CertificateRequest, so clients pick the right certificate.
        guard let names = SSL_load_client_CA_file(caFile) else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot read CA names from \(caFile)")
        }
        SSL_CTX_set_client_CA_list(ctx, names)  // takes ownership of names
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        SSL_CTX_set_verify_depth(ctx, clientChainMaxDepth)
    }

    /// Loads a chain and its key, and checks that they belong together.
    static func loadCertificate(_ ctx: OpaquePointer, _ files: TLSCertificateFiles) throws {
        guard SSL_CTX_use_certificate_chain_file(ctx, files.chainFile) == 1 else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot load certificate chain \(files.chainFile)")
        }
        // An encrypted key is refused, never asked for: OpenSSL's default
        // passphrase callback prompts on the terminal and waits there.
        SSL_CTX_set_default_passwd_cb(ctx) { _, _, _, _ in 0 }
        guard SSL_CTX_use_PrivateKey_file(ctx, files.privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot load private key \(files.privateKeyFile)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw OpenSSLErrorQueue.error(
                .configuration,
                "private key \(files.privateKeyFile) does not match certificate \(files.chainFile)")
        }
    }
}
