import BillingAuth
import Testing

@Test func scopesUseTheirWireNames() {
    #expect(Scope(rawValue: "metering:write") == .meteringWrite)
    #expect(Scope(rawValue: "metering:read") == .meteringRead)
    #expect(Scope(rawValue: "accounts:admin") == .accountsAdmin)
    #expect(Scope(rawValue: "Metering:Write") == nil)
    #expect(Scope(rawValue: "metering:*") == nil)
}

@Test func rolesParseIgnoringASCIICase() {
    #expect(Role(claim: "owner") == .owner)
    #expect(Role(claim: "Owner") == .owner)
    #expect(Role(claim: "ADMIN") == .admin)
    #expect(Role(claim: "Member") == .member)
    #expect(Role(claim: "viewer") == .viewer)
    #expect(Role(claim: "superuser") == nil)
    #expect(Role(claim: "owner ") == nil)
    #expect(Role(claim: "") == nil)
    // Unicode case mapping is not applied: dotted capital I stays non-ASCII.
    #expect(Role(claim: "ADMİN") == nil)
    // A custom role is the verifier's to give, never parsed from a name.
    #expect(Role(claim: "custom") == nil)
}

@Test func auditNamesCarryIdentifiersOnly() {
    #expect(Principal.service(keyID: "0123456789ab", scopes: [.meteringRead]).auditName == "key:0123456789ab")
    #expect(
        Principal.user(userID: "user-1", accountID: "acct-1", role: .viewer, permissions: []).auditName == "user:user-1")
    #expect(
        TestTokens.claims.principal
            == .user(userID: "user-1", accountID: "acct-1", role: .owner, permissions: ["billing:read"]))
}
