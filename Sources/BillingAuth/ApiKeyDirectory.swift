/// Where the verifier finds the stored API keys (the ledger's key ring in
/// the server, a dictionary in tests).
///
/// `generation` is what makes caching safe: it must grow after every change
/// to any key, and only once the change can be read through `storedKey`.
/// The verifier reads it before looking a key up, so a verification it
/// caches can never be older than the generation it is filed under.
public protocol ApiKeyDirectory {
    var generation: UInt64 { get }
    func storedKey(_ keyID: String) -> StoredApiKey?
}

/// What authentication needs to know of a stored API key.
public struct StoredApiKey: Sendable {
    /// SHA-256 of the whole token (`ApiKeyToken.hash`).
    public var hash: [UInt8]
    /// Scope names as stored; names this build does not know grant nothing.
    public var scopes: [String]
    /// Unix seconds after which the key is refused; 0: never.
    public var expiresUnix: Int64
    /// Unix seconds of the revocation; 0: not revoked.
    public var revokedUnix: Int64

    public init(hash: [UInt8], scopes: [String], expiresUnix: Int64, revokedUnix: Int64) {
        self.hash = hash
        self.scopes = scopes
        self.expiresUnix = expiresUnix
        self.revokedUnix = revokedUnix
    }
}
