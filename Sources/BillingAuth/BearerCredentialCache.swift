import Synchronization

/// Remembers what `BearerCredential.parse` made of recent authorization
/// headers: a service calls with the same header on every call, and parsing
/// it (copies, a base64 decode, two strings) was ~5 % of a Quote's server
/// time. Parsing is pure, so a remembered result is the result; verifying
/// the credential still happens on every call. Only successes are kept
/// (a malformed header pays the full parse), at most `capacity` headers:
/// past that the cache starts over, so headers that never repeat cost one
/// dictionary insert each and hold no more than `capacity` entries.
public final class BearerCredentialCache: Sendable {
    public let capacity: Int
    private let parsed = Mutex<[String: Credential]>([:])

    public init(capacity: Int = 256) {
        precondition(capacity > 0, "the credential cache needs room for at least one header")
        self.capacity = capacity
    }

    /// `BearerCredential.parse(authorizationHeader:)`, from memory when this
    /// header parsed before.
    public func parse(authorizationHeader: String?) -> Result<Credential, AuthError> {
        guard let header = authorizationHeader else { return .failure(.missing) }
        if let known = parsed.withLock({ $0[header] }) { return .success(known) }
        let result = BearerCredential.parse(authorizationHeader: header)
        if case .success(let credential) = result {
            parsed.withLock { cache in
                if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
                cache[header] = credential
            }
        }
        return result
    }

    /// Headers remembered now.
    public var count: Int { parsed.withLock { $0.count } }
}
