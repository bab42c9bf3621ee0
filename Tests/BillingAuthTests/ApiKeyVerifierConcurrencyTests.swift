import BillingCore
import BillingCore
import BillingAuth
import Synchronization
import Testing

/// Many tasks share one verifier and a small cache while keys are revoked
/// under them. A task that saw a revocation finish must see the key
/// refused; a forged token is always refused; a live key always passes.
@Test(arguments: [1 as UInt64, 2, 3])
func concurrentCallersGetTheRightAnswer(seed: UInt64) async throws {
    let now: Int64 = 1_750_000_000
    let directory = KeyDirectoryFake()
    let keys = (0..<16).map { index in directory.add(scopes: index.isMultiple(of: 2) ? [.meteringRead] : [.meteringWrite]) }
    let forgeries = keys.map { forged($0.token) }
    let toRevoke = 4
    let verifier = ApiKeyVerifier(cacheCapacity: 8)
    let tally = Tally()

    await withTaskGroup(of: Void.self) { group in
        group.addTask {
            for index in 0..<toRevoke {
                for _ in 0..<50 { await Task.yield() }
                directory.revoke(keys[index].keyID, atUnix: now)
                tally.revoked.withLock { _ = $0.insert(index) }
            }
        }
        for task in 0..<8 {
            group.addTask {
                var random = SplitMix64(seed: seed &* 1_000 &+ UInt64(task))
                for _ in 0..<2_000 {
                    let index = Int.random(in: 0..<keys.count, using: &random)
                    let forge = Int.random(in: 0..<4, using: &random) == 0
                    let token = forge ? forgeries[index] : keys[index].token
                    let knownRevoked = tally.revoked.withLock { $0.contains(index) }
                    let result = Result { () throws(ApiKeyRefusal) -> Principal in
                        try verifier.verify(keyID: keys[index].keyID, token: token, nowUnix: now, in: directory)
                    }
                    let right: Bool = switch result {
                    case .success(let principal):
                        !forge && !knownRevoked
                            && principal == .service(keyID: keys[index].keyID, scopes: index.isMultiple(of: 2) ? [.meteringRead] : [.meteringWrite])
                    case .failure(.unknown): forge
                    // Revoked while this call ran, or before it.
                    case .failure(.revoked): !forge && index < toRevoke
                    case .failure(.expired): false
                    }
                    if !right { tally.wrong.add(1, ordering: .relaxed) }
                    if Int.random(in: 0..<8, using: &random) == 0 { await Task.yield() }
                }
            }
        }
    }

    #expect(tally.wrong.load(ordering: .relaxed) == 0, "seed \(seed)")
    #expect(verifier.cachedCount <= 8)
    for (index, key) in keys.enumerated() {
        let parsed = try #require(ApiKeyToken.parse(key.token))
        if index < toRevoke {
            #expect(throws: ApiKeyRefusal.revoked) {
                try verifier.verify(keyID: parsed.keyID, token: key.token, nowUnix: now, in: directory)
            }
        } else {
            #expect(throws: Never.self) {
                try verifier.verify(keyID: parsed.keyID, token: key.token, nowUnix: now, in: directory)
            }
        }
    }
}

/// What the tasks share: keys whose revocation has finished, wrong answers seen.
private final class Tally: Sendable {
    let revoked = Mutex<Set<Int>>([])
    let wrong = Atomic<Int>(0)
}
