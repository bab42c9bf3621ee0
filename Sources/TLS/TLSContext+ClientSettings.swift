internal import COpenSSL

extension TLSContext {
    /// Intermediate CAs allowed between the server certificate and its trust anchor.
    static let serverChainMaxDepth: Int32 = 4

    static func applyClientSettings(_ ctx: OpaquePointer, _ configuration: TLSClientConfiguration) throws {
        switch configuration.serverVerification {
        case .trustCAFile(let caFile):
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw OpenSSLErrorQueue.error(.configuration, "cannot load CA file \(caFile)")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            SSL_CTX_set_verify_depth(ctx, serverChainMaxDepth)
            if let name = configuration.bareServerName {
                try checkServerName(ctx, name)
            }
        case .noVerification:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }

        if let certificate = configuration.certificate {
            try loadCertificate(ctx, certificate)
        }
        try offerALPN(ctx, configuration.applicationProtocols)

        // Each client connection does a full handshake: nothing is resumed,
        // so a load generator measures what a new client costs.
        billing_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
    }

    /// The server certificate must name `name` (a DNS name or an IP address).
    private static func checkServerName(_ ctx: OpaquePointer, _ name: String) throws {
        let param = SSL_CTX_get0_param(ctx)
        let ok =
            isIPAddress(name)
            ? X509_VERIFY_PARAM_set1_ip_asc(param, name) == 1
            : X509_VERIFY_PARAM_set1_host(param, name, 0) == 1
        guard ok else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot check server name \(name)")
        }
    }
}
