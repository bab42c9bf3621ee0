/// What a server context needs. Versions, ciphers and ALPN are not
/// configurable: TLS 1.2–1.3, ECDHE with AEAD ciphers, "h2" only.
public struct TLSServerConfiguration: Sendable, Hashable {
    public var certificate: TLSCertificateFiles
    /// When set, every client must present a certificate that chains to a CA
    /// in this PEM file (mutual TLS); clients without one fail the handshake.
    public var clientCAFile: String?

    public init(certificate: TLSCertificateFiles, clientCAFile: String? = nil) {
        self.certificate = certificate
        self.clientCAFile = clientCAFile
    }
}
