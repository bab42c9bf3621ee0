/// A signed-in user's role in their account, from the token's `role` claim.
public enum Role: String, Sendable, Hashable, CaseIterable {
    case owner
    case admin
    case member
    case viewer
    /// Any other role the platform defines (a custom role, named in the
    /// token): no rights of its own; its `permissions` alone grant
    /// (`billing:read` reads billing). Never parsed from a claim by
    /// `init(claim:)`: the verifier gives it to a role it does not know.
    case custom

    /// Parses a claim value, ignoring ASCII case ("Owner", "owner", "OWNER").
    /// Only ASCII letters are folded, so no Unicode case mapping can turn
    /// some other string into a role name.
    public init?(claim: String) {
        let folded = String(decoding: claim.utf8.map { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
        }, as: UTF8.self)
        guard let role = Role(rawValue: folded), role != .custom else { return nil }
        self = role
    }
}
