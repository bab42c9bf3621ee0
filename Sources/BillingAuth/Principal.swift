/// Who is calling, once their credential has been verified. What they may
/// do is decided by the service layer from this value.
public enum Principal: Sendable, Hashable {
    /// A service holding an API key.
    case service(keyID: String, scopes: Set<Scope>)
    /// A signed-in user whose token the platform signed.
    case user(userID: String, accountID: String, role: Role, permissions: Set<String>)

    /// The name written to the audit log: "key:<id>" or "user:<id>". Holds
    /// identifiers only, never a secret.
    public var auditName: String {
        switch self {
        case .service(let keyID, _): "key:\(keyID)"
        case .user(let userID, _, _, _): "user:\(userID)"
        }
    }

    /// A service key (an operator or a platform service), not a customer's user.
    public var isService: Bool {
        if case .service = self { return true }
        return false
    }
}
