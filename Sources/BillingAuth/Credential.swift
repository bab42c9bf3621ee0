/// A credential read from an authorization header, not yet verified.
public enum Credential: Sendable, Equatable {
    /// An API key: its public id, and the whole token to hash and compare.
    case apiKey(keyID: String, token: String)
    /// A user token, to verify with `JWTVerifier`.
    case jwt(String)
}

extension Credential: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Safe to log: the key id at most, never a token.
    public var description: String {
        switch self {
        case .apiKey(let keyID, _): "apiKey(keyID: \(keyID), token: <redacted>)"
        case .jwt: "jwt(<redacted>)"
        }
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        switch self {
        case .apiKey(let keyID, _): Mirror(self, children: ["keyID": keyID], displayStyle: .enum)
        case .jwt: Mirror(self, children: [], displayStyle: .enum)
        }
    }
}
