/// What a verified user token says about its holder.
public struct UserClaims: Sendable, Hashable {
    /// `sub`.
    public var userID: String
    /// `account_id`: the one account this user may reach.
    public var accountID: String
    public var role: Role
    /// `permissions`, e.g. "billing:read"; empty when the claim is absent.
    public var permissions: Set<String>
    /// `exp`, seconds since the Unix epoch.
    public var expiresAt: Int64
    /// `nbf`, seconds since the Unix epoch, when present.
    public var notBefore: Int64?

    public init(
        userID: String, accountID: String, role: Role, permissions: Set<String> = [],
        expiresAt: Int64, notBefore: Int64? = nil
    ) {
        self.userID = userID
        self.accountID = accountID
        self.role = role
        self.permissions = permissions
        self.expiresAt = expiresAt
        self.notBefore = notBefore
    }

    public var principal: Principal {
        .user(userID: userID, accountID: accountID, role: role, permissions: permissions)
    }
}
