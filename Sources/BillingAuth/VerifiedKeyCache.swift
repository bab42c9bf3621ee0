import Synchronization

/// API keys that passed the full check, so a repeat caller skips the
/// SHA-256. Failures are never stored: a wrong token always pays the full
/// check.
///
/// Filed by key id (public), each entry holding the exact token that
/// passed; a presented token is compared with it in constant time, so
/// neither the dictionary probe nor the comparison times the secret.
/// All entries belong to one directory generation: a newer generation
/// empties the cache, so a revocation, a new key or a reload is seen by the
/// next call. Expiry is checked again on every hit.
final class VerifiedKeyCache: Sendable {
    private struct Entry {
        var token: [UInt8]
        var principal: Principal
        var expiresUnix: Int64
    }

    private struct State {
        var generation: UInt64 = 0
        var entries: [String: Entry] = [:]

        mutating func reset(to newer: UInt64) {
            entries.removeAll(keepingCapacity: true)
            generation = newer
        }
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        precondition(capacity > 0, "the verified key cache needs room for at least one key")
        self.capacity = capacity
    }

    /// The principal verified for exactly `token`, if that verification was
    /// made under `generation` and the key has not expired by `nowUnix`.
    func principal(keyID: String, token: String, generation: UInt64, nowUnix: Int64) -> Principal? {
        var token = token
        return token.withUTF8 { presented in
            state.withLock { locked -> Principal? in
                guard generation == locked.generation else {
                    if generation > locked.generation { locked.reset(to: generation) }
                    return nil
                }
                guard let entry = locked.entries[keyID] else { return nil }
                guard entry.expiresUnix == 0 || entry.expiresUnix > nowUnix else {
                    locked.entries[keyID] = nil
                    return nil
                }
                // A mismatch is someone else's token for this id: refused by the full check, entry kept.
                return Self.sameBytes(presented, entry.token) ? entry.principal : nil
            }
        }
    }

    /// Files a successful verification made under `generation`. One made
    /// under an older generation than the cache's is dropped: the key may
    /// have changed since.
    func remember(_ principal: Principal, keyID: String, token: String, expiresUnix: Int64, generation: UInt64) {
        let entry = Entry(token: Array(token.utf8), principal: principal, expiresUnix: expiresUnix)
        state.withLock { locked in
            if generation > locked.generation { locked.reset(to: generation) }
            guard generation == locked.generation else { return }
            if locked.entries[keyID] == nil, locked.entries.count >= capacity {
                // Hash order is seeded per process, so this evicts an arbitrary key.
                locked.entries.remove(at: locked.entries.startIndex)
            }
            locked.entries[keyID] = entry
            assert(locked.entries.count <= capacity)
        }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Whether `a` and `b` hold the same bytes, in time that depends only on
    /// their lengths (public: every key token has the same length).
    private static func sameBytes(_ a: UnsafeBufferPointer<UInt8>, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return b.withUnsafeBufferPointer { b in
            var difference: UInt8 = 0
            for index in 0..<a.count { difference |= a[index] ^ b[index] }
            return difference == 0
        }
    }
}

