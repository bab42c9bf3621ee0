/// Checks API keys: the stored hash, then revocation, then expiry. A key
/// that passes is remembered (see `VerifiedKeyCache`), so the same caller's
/// next call skips the SHA-256 while the directory has not changed.
public final class ApiKeyVerifier: Sendable {
    /// Distinct keys remembered. A deployment has a handful of service keys;
    /// this leaves room for many more at a few hundred bytes each.
    public static let defaultCacheCapacity = 1024

    private let cache: VerifiedKeyCache

    public init(cacheCapacity: Int = ApiKeyVerifier.defaultCacheCapacity) {
        cache = VerifiedKeyCache(capacity: cacheCapacity)
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
        guard let key = directory.storedKey(keyID), ApiKeyToken.matches(token: token, storedHash: key.hash) else {
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
