internal import COpenSSL

extension TLSContext {
    /// ECDHE key exchange with an AEAD cipher, for TLS 1.2 only (TLS 1.3 uses
    /// `tls13CipherSuites`): forward secrecy, no CBC, no RSA key exchange, no
    /// SHA-1 MAC. The order is the client's to choose (server preference is
    /// not set: every suite here is one we are content with), and the
    /// certificate's key type (ECDSA or RSA) narrows the list anyway.
    static let tls12CipherList = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// Every TLS 1.3 suite is AEAD; listed so a changed library default cannot change them.
    static let tls13CipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

    /// Key-exchange groups (the client's key share and order decide among
    /// them): X25519 is fast and misuse-resistant; P-256 and P-384 for
    /// clients (FIPS builds) that lack it.
    static let groups = "X25519:P-256:P-384"

    static func applyCommonSettings(_ ctx: OpaquePointer, minimum: TLSVersion, maximum: TLSVersion) throws {
        // Security level 2: keys of at least 112 bits (RSA/DH >= 2048,
        // ECC >= 224) and no SHA-1 signatures. Debian's openssl.cnf says the
        // same; saying it here keeps it true on any system.
        SSL_CTX_set_security_level(ctx, 2)

        // TLS 1.2 is the minimum: 1.0 and 1.1 are deprecated (RFC 8996) and
        // HTTP/2 itself requires 1.2 (RFC 9113 §9.2). TLS 1.3 is allowed and
        // preferred: one round trip fewer, only AEAD ciphers, encrypted certificates.
        guard billing_SSL_CTX_set_min_proto_version(ctx, minimum.rawValue) == 1,
            billing_SSL_CTX_set_max_proto_version(ctx, maximum.rawValue) == 1
        else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot set TLS versions \(minimum)...\(maximum)")
        }
        guard SSL_CTX_set_cipher_list(ctx, tls12CipherList) == 1 else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot set TLS 1.2 cipher list")
        }
        guard SSL_CTX_set_ciphersuites(ctx, tls13CipherSuites) == 1 else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot set TLS 1.3 cipher suites")
        }
        guard billing_SSL_CTX_set1_groups_list(ctx, groups) == 1 else {
            throw OpenSSLErrorQueue.error(.configuration, "cannot set key-exchange groups")
        }

        // No TLS compression (CRIME). No renegotiation: TLS 1.3 has none, and
        // in 1.2 it is a CPU-exhaustion lever and a source of past bugs;
        // HTTP/2 forbids it after the preface anyway (RFC 9113 §9.2.1).
        SSL_CTX_set_options(ctx, billing_SSL_OP_NO_COMPRESSION() | billing_SSL_OP_NO_RENEGOTIATION())

        // SSL_MODE_RELEASE_BUFFERS stays off: freeing the ~34 KiB of record
        // buffers when a connection idles would cost a malloc/free per read
        // burst on the hot path. Idle connections are closed by the server's
        // idle timeout instead.
    }
}
