import BillingAuth
import Synchronization
import Testing

private let now: Int64 = 1_750_000_000

private func verify(
    _ verifier: ApiKeyVerifier, _ token: String, at nowUnix: Int64 = now, in directory: KeyDirectoryFake
) throws(ApiKeyRefusal) -> Principal {
    guard let parsed = ApiKeyToken.parse(token) else { preconditionFailure("test token does not parse") }
    return try verifier.verify(keyID: parsed.keyID, token: token, nowUnix: nowUnix, in: directory)
}

@Test func aRepeatCallerSkipsTheFullCheck() throws {
    let directory = KeyDirectoryFake()
    let key = directory.add(scopes: [.meteringRead, .meteringWrite])
    let verifier = ApiKeyVerifier()

    let first = try verify(verifier, key.token, in: directory)
    #expect(first == .service(keyID: key.keyID, scopes: [.meteringRead, .meteringWrite]))
    #expect(directory.lookups == 1)
    for _ in 0..<3 {
        #expect(try verify(verifier, key.token, in: directory) == first)
    }
    #expect(directory.lookups == 1)
}

@Test func aCachedKeyIsRefusedOnTheCallAfterItsRevocation() throws {
    let directory = KeyDirectoryFake()
    let key = directory.add()
    let other = directory.add()
    let verifier = ApiKeyVerifier()
    _ = try verify(verifier, key.token, in: directory)
    _ = try verify(verifier, other.token, in: directory)
    _ = try verify(verifier, key.token, in: directory)
    #expect(directory.lookups == 2)

    directory.revoke(key.keyID, atUnix: now)

    for _ in 0..<3 {
        #expect(throws: ApiKeyRefusal.revoked) { try verify(verifier, key.token, in: directory) }
    }
    // The other key is checked again once, then served from the cache.
    #expect(try verify(verifier, other.token, in: directory) == .service(keyID: other.keyID, scopes: [.meteringRead]))
    #expect(try verify(verifier, other.token, in: directory) == .service(keyID: other.keyID, scopes: [.meteringRead]))
    #expect(directory.lookups == 2 + 3 + 1)
}

@Test func aRevocationRacingTheFirstCheckIsSeenByTheNextCall() throws {
    let directory = KeyDirectoryFake()
    let key = directory.add()
    let verifier = ApiKeyVerifier()
    // The check reads the key as valid; the revocation lands before it is cached.
    directory.onNextLookup { directory in directory.revoke(key.keyID, atUnix: now) }

    _ = try verify(verifier, key.token, in: directory)

    #expect(throws: ApiKeyRefusal.revoked) { try verify(verifier, key.token, in: directory) }
}

@Test func aCheckOvertakenByARevocationAndANewerCheckIsNotCached() throws {
    let directory = KeyDirectoryFake()
    let key = directory.add()
    let other = directory.add()
    let verifier = ApiKeyVerifier()
    // While the first check holds the key as valid, the key is revoked and
    // another caller's check is filed under the newer generation.
    directory.onNextLookup { directory in
        directory.revoke(key.keyID, atUnix: now)
        #expect(throws: Never.self) { try verify(verifier, other.token, in: directory) }
    }

    _ = try verify(verifier, key.token, in: directory)

    #expect(throws: ApiKeyRefusal.revoked) { try verify(verifier, key.token, in: directory) }
}

@Test func aCachedKeyIsRefusedFromTheSecondItExpires() throws {
    let directory = KeyDirectoryFake()
    let key = directory.add(expiresUnix: now + 60)
    let verifier = ApiKeyVerifier()
    _ = try verify(verifier, key.token, at: now, in: directory)
    _ = try verify(verifier, key.token, at: now + 59, in: directory)
    #expect(directory.lookups == 1)

    #expect(throws: ApiKeyRefusal.expired) { try verify(verifier, key.token, at: now + 60, in: directory) }
    #expect(throws: ApiKeyRefusal.expired) { try verify(verifier, key.token, at: now + 61, in: directory) }
    #expect(directory.lookups == 3)
}

@Test func aWrongSecretForACachedKeyIdIsAlwaysRefused() throws {
    let directory = KeyDirectoryFake()
    let key = directory.add()
    let verifier = ApiKeyVerifier()
    _ = try verify(verifier, key.token, in: directory)
    let forgery = forged(key.token)

    for round in 1...3 {
        #expect(throws: ApiKeyRefusal.unknown) { try verify(verifier, forgery, in: directory) }
        // Every attempt pays the full check: failures are never cached.
        #expect(directory.lookups == 1 + round)
    }
    // The forgeries did not push the real key out.
    _ = try verify(verifier, key.token, in: directory)
    #expect(directory.lookups == 4)
}

@Test func refusalsAreNeverCached() throws {
    let directory = KeyDirectoryFake()
    let revoked = directory.add()
    directory.revoke(revoked.keyID, atUnix: now)
    let expired = directory.add(expiresUnix: now)
    let unknown = ApiKeyMaterial.generate().token
    let verifier = ApiKeyVerifier()

    for _ in 0..<2 {
        #expect(throws: ApiKeyRefusal.revoked) { try verify(verifier, revoked.token, in: directory) }
        #expect(throws: ApiKeyRefusal.expired) { try verify(verifier, expired.token, in: directory) }
        #expect(throws: ApiKeyRefusal.unknown) { try verify(verifier, unknown, in: directory) }
    }
    #expect(directory.lookups == 6)
    #expect(verifier.cachedCount == 0)
}

@Test(arguments: [1, 8, ApiKeyVerifier.defaultCacheCapacity])
func theCacheStaysWithinItsBound(capacity: Int) throws {
    let directory = KeyDirectoryFake()
    let keys = (0..<(capacity * 2 + 50)).map { _ in directory.add() }
    let verifier = ApiKeyVerifier(cacheCapacity: capacity)

    for key in keys {
        #expect(try verify(verifier, key.token, in: directory) == .service(keyID: key.keyID, scopes: [.meteringRead]))
        #expect(verifier.cachedCount <= capacity)
    }
    #expect(verifier.cachedCount == capacity)
    // Evicted or not, every key still gets its own principal.
    for key in keys.reversed() {
        #expect(try verify(verifier, key.token, in: directory) == .service(keyID: key.keyID, scopes: [.meteringRead]))
    }
    #expect(verifier.cachedCount == capacity)
}

/// An unknown key id is hashed like a known one with a wrong secret, so
/// the answer's timing does not tell which key ids exist.
@Test func anUnknownKeyIDIsHashedLikeAKnownOne() throws {
    let directory = KeyDirectoryFake()
    let known = directory.add()
    let hashed = Mutex<[String]>([])
    let verifier = ApiKeyVerifier(hash: { token in
        hashed.withLock { $0.append(token) }
        return ApiKeyToken.hash(token)
    })
    let stranger = KeyDirectoryFake().add()  // well-formed, never in `directory`
    let wrongSecret = "bk_\(known.keyID)_\(stranger.token.dropFirst("bk_".count + 12 + 1))"
    #expect(throws: ApiKeyRefusal.unknown) { try verify(verifier, stranger.token, in: directory) }
    #expect(throws: ApiKeyRefusal.unknown) { try verify(verifier, wrongSecret, in: directory) }
    #expect(hashed.withLock { $0 } == [stranger.token, wrongSecret])
    #expect(try verify(verifier, known.token, in: directory) == .service(keyID: known.keyID, scopes: [.meteringRead]))
}
