import Synchronization

/// Remembers what `BearerCredential.parse` made of recent authorization
/// headers: a service calls with the same header on every call, and parsing
/// it (copies, a base64 decode, two strings) was ~5 % of a Quote's server
/// time. Parsing is pure, so a remembered result is the result; verifying
/// the credential still happens on every call. Only successes are kept
/// (a malformed header pays the full parse), at most `capacity` headers:
/// past that the cache starts over, so headers that never repeat cost one
/// dictionary insert each and hold no more than `capacity` entries.
///
/// A header holds a secret, so the lookup must not time it: the
/// dictionary's hash is keyed per process (Swift's seeded SipHash), and
/// keys are compared in constant time for their length (a `String` `==`
/// stops at the first differing byte, which would tell a caller how much of
/// a cached token its guess shared).
public final class BearerCredentialCache: Sendable {
    public let capacity: Int
    private let parsed = Mutex<[SecretKey: Credential]>([:])

    private struct SecretKey: Hashable, Sendable {
        let header: String

        func hash(into hasher: inout Hasher) { hasher.combine(header) }

        static func == (lhs: SecretKey, rhs: SecretKey) -> Bool {
            var (left, right) = (lhs.header, rhs.header)
            return left.withUTF8 { a in
                right.withUTF8 { b in
                    guard a.count == b.count else { return false }  // lengths are public (the formats fix them)
                    var difference: UInt8 = 0
                    for index in 0..<a.count { difference |= a[index] ^ b[index] }
                    return difference == 0
                }
            }
        }
    }

    public init(capacity: Int = 256) {
        precondition(capacity > 0, "the credential cache needs room for at least one header")
        self.capacity = capacity
    }

    /// `BearerCredential.parse(authorizationHeader:)`, from memory when this
    /// header parsed before.
    public func parse(authorizationHeader: String?) -> Result<Credential, AuthError> {
        guard let header = authorizationHeader else { return .failure(.missing) }
        let key = SecretKey(header: header)
        if let known = parsed.withLock({ $0[key] }) { return .success(known) }
        let result = BearerCredential.parse(authorizationHeader: header)
        if case .success(let credential) = result {
            parsed.withLock { cache in
                if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
                cache[key] = credential
            }
        }
        return result
    }

    /// Headers remembered now.
    public var count: Int { parsed.withLock { $0.count } }
}
