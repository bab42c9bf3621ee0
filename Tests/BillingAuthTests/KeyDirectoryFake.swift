import BillingAuth
import Synchronization

/// API keys in memory that, like the ledger's key ring, move their
/// generation after every change, once the change is readable. Counts
/// lookups, so a test can tell a cache hit from a full check.
final class KeyDirectoryFake: ApiKeyDirectory, Sendable {
    private let keys = Mutex<[String: StoredApiKey]>([:])
    private let generationCounter = Atomic<UInt64>(0)
    private let lookupCounter = Atomic<Int>(0)
    private let afterNextLookup = Mutex<(@Sendable (KeyDirectoryFake) -> Void)?>(nil)

    var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// Full checks made so far.
    var lookups: Int { lookupCounter.load(ordering: .relaxed) }

    func storedKey(_ keyID: String) -> StoredApiKey? {
        lookupCounter.add(1, ordering: .relaxed)
        let key = keys.withLock { $0[keyID] }
        let hook = afterNextLookup.withLock { hook in
            defer { hook = nil }
            return hook
        }
        hook?(self)
        return key
    }

    /// A new key with `scopes`; returns its token.
    @discardableResult
    func add(scopes: [Scope] = [.meteringRead], expiresUnix: Int64 = 0) -> (keyID: String, token: String) {
        let material = ApiKeyMaterial.generate()
        change(material.keyID) { _ in
            StoredApiKey(hash: material.hash, scopes: scopes.map(\.rawValue), expiresUnix: expiresUnix, revokedUnix: 0)
        }
        return (material.keyID, material.token)
    }

    func revoke(_ keyID: String, atUnix: Int64) {
        change(keyID) { key in
            guard var key else { return nil }
            key.revokedUnix = atUnix
            return key
        }
    }

    /// Runs `body` once, right after the next lookup has read its key and
    /// before the verifier sees it: a change racing a verification.
    func onNextLookup(_ body: @escaping @Sendable (KeyDirectoryFake) -> Void) {
        afterNextLookup.withLock { $0 = body }
    }

    private func change(_ keyID: String, _ update: (StoredApiKey?) -> StoredApiKey?) {
        keys.withLock { $0[keyID] = update($0[keyID]) }
        generationCounter.add(1, ordering: .releasing)
    }
}

/// `token` with its secret swapped for another well-formed one: same key id, wrong key.
func forged(_ token: String) -> String {
    let other = ApiKeyMaterial.generate().token
    let forgery = String(token.prefix(3 + ApiKeyToken.keyIDLength + 1)) + String(other.suffix(ApiKeyToken.secretLength))
    precondition(ApiKeyToken.parse(forgery) != nil && forgery != token)
    return forgery
}
