/// Checks API keys: the stored hash, then revocation, then expiry. A key
/// that passes is remembered (see `VerifiedKeyCache`), so the same caller's
/// next call skips the SHA-256 while the directory has not changed.
public final class ApiKeyVerifier: Sendable {
    /// Distinct keys remembered. A deployment has a handful of service keys;
    /// this leaves room for many more at a few hundred bytes each.
    public static let defaultCacheCapacity = 1024

    private let cache: VerifiedKeyCache
    /// The stored form of a presented token (SHA-256; a parameter for tests).
    private let hash: @Sendable (String) -> [UInt8]

    public init(cacheCapacity: Int = ApiKeyVerifier.defaultCacheCapacity,
                hash: @escaping @Sendable (String) -> [UInt8] = ApiKeyToken.hash) {
        cache = VerifiedKeyCache(capacity: cacheCapacity)
        self.hash = hash
    }

    /// The principal holding `token` (whose id is `keyID`, as
    /// `ApiKeyToken.parse` split it) at `nowUnix`, else why not.
    public func verify(
        keyID: String, token: String, nowUnix: Int64, in directory: some ApiKeyDirectory
    ) throws(ApiKeyRefusal) -> Principal {
        // Read before the key: whatever the lookup sees is at least this new.
        let generation = directory.generation
        if let principal = cache.principal(keyID: keyID, token: token, generation: generation, nowUnix: nowUnix) {
            return principal
        }
        // Hashed before the lookup, known id or not: an unknown id is
        // answered no faster than a known one with a wrong secret, so which
        // key ids exist does not leak through timing.
        let presented = hash(token)
        guard let key = directory.storedKey(keyID), ApiKeyToken.matches(hash: presented, storedHash: key.hash) else {
            throw .unknown
        }
        guard key.revokedUnix == 0 else { throw .revoked }
        guard key.expiresUnix == 0 || key.expiresUnix > nowUnix else { throw .expired }
        let principal = Principal.service(keyID: keyID, scopes: Set(key.scopes.compactMap(Scope.init(rawValue:))))
        cache.remember(principal, keyID: keyID, token: token, expiresUnix: key.expiresUnix, generation: generation)
        return principal
    }

    /// Keys remembered now; never more than the capacity.
    package var cachedCount: Int { cache.count }
}
