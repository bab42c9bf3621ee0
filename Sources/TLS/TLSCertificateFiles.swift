/// A certificate chain and its private key, both PEM files.
public struct TLSCertificateFiles: Sendable, Hashable {
    /// Leaf certificate first, then any intermediates (not the root).
    public var chainFile: String
    /// The leaf's private key, unencrypted.
    public var privateKeyFile: String

    public init(chainFile: String, privateKeyFile: String) {
        self.chainFile = chainFile
        self.privateKeyFile = privateKeyFile
    }
}
