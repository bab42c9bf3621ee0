import BillingAuth
import Testing

@Test func signedTokenVerifiesToItsClaims() throws {
    let claims = UserClaims(
        userID: "user-1", accountID: "acct-1", role: .member, permissions: ["billing:read", "billing:pay"],
        expiresAt: TestTokens.now + 900, notBefore: TestTokens.now - 5)
    let token = TestTokens.valid(claims: claims)

    #expect(try TestTokens.verifier.verify(token, nowUnix: TestTokens.now) == claims)
}

@Test func claimsVariantsTheVerifierAccepts() throws {
    let verifier = TestTokens.verifier
    let now = TestTokens.now
    let audiences = TestTokens.payload(["aud": #"["web","billing"]"#])
    #expect(try verifier.verify(TestTokens.craft(payload: audiences), nowUnix: now).accountID == "acct-1")

    let capitalRole = TestTokens.payload(["role": #""Owner""#])
    #expect(try verifier.verify(TestTokens.craft(payload: capitalRole), nowUnix: now).role == .owner)

    // A role the platform made up (a custom role) is no built-in one: it
    // has what its permissions give, nothing else ("custom" itself too).
    for name in ["finance", "custom", "superuser", "Administrator"] {
        let custom = TestTokens.payload(["role": "\"\(name)\"", "permissions": #"["billing:read"]"#])
        let claims = try verifier.verify(TestTokens.craft(payload: custom), nowUnix: now)
        #expect(claims.role == .custom && claims.permissions == ["billing:read"], "\(name)")
    }

    let noOptionals = TestTokens.payload(["permissions": nil, "iat": nil])
    #expect(try verifier.verify(TestTokens.craft(payload: noOptionals), nowUnix: now).permissions == [])

    let noTyp = TestTokens.craft(header: #"{"alg":"HS256"}"#)
    #expect(try verifier.verify(noTyp, nowUnix: now).userID == "user-1")

    let lowerTyp = TestTokens.craft(header: #"{"typ":"jwt","alg":"HS256","kid":"k1"}"#)
    #expect(try verifier.verify(lowerTyp, nowUnix: now).userID == "user-1")

    let extraClaims = TestTokens.payload(["email": #""a@example.com""#, "org": #"{"id":1}"#])
    #expect(try verifier.verify(TestTokens.craft(payload: extraClaims), nowUnix: now).userID == "user-1")

    // Members are counted for duplicates (session 29) outside strings and
    // nested values only: commas, braces and escaped quotes inside them,
    // a nested object's own "sub", and names with escapes are not members.
    let tricky = TestTokens.payload([
        "note": #""a,b},{\"sub\":\"x\",\\""#, "org": #"{"sub":"nested","list":[1,{"a":[2,3]}]}"#,
        #"t\u0065am"#: #""ops""#, "sub": #""Jos\u00e9 \u00fcber""#,
    ])
    let trickyClaims = try verifier.verify(TestTokens.craft(payload: tricky), nowUnix: now)
    #expect(trickyClaims.userID == "José über")
}

@Test func clockSkewIsToleratedUpToTheLeeway() throws {
    let verifier = TestTokens.verifier  // 60 s leeway
    let now = TestTokens.now
    func token(_ overrides: [String: String?]) -> String { TestTokens.craft(payload: TestTokens.payload(overrides)) }

    #expect(throws: Never.self) { try verifier.verify(token(["exp": "\(now - 59)"]), nowUnix: now) }
    #expect(throws: AuthError.expired) { try verifier.verify(token(["exp": "\(now - 60)"]), nowUnix: now) }
    #expect(throws: Never.self) { try verifier.verify(token(["nbf": "\(now + 60)"]), nowUnix: now) }
    #expect(throws: AuthError.notYetValid) { try verifier.verify(token(["nbf": "\(now + 61)"]), nowUnix: now) }
    #expect(throws: Never.self) { try verifier.verify(token(["iat": "\(now + 60)"]), nowUnix: now) }
    #expect(throws: AuthError.notYetValid) { try verifier.verify(token(["iat": "\(now + 61)"]), nowUnix: now) }

    let strict = JWTVerifier(
        secret: TestTokens.secret, issuer: TestTokens.issuer, audience: TestTokens.audience, leewaySeconds: 0)
    #expect(throws: AuthError.expired) { try strict.verify(token(["exp": "\(now)"]), nowUnix: now) }
    #expect(throws: Never.self) { try strict.verify(token(["exp": "\(now + 1)"]), nowUnix: now) }
}

@Test func extremeTimesDoNotOverflow() {
    let verifier = TestTokens.verifier
    let farFuture = TestTokens.craft(payload: TestTokens.payload(["exp": "\(Int64.max)", "nbf": "\(Int64.min)", "iat": nil]))
    #expect(throws: Never.self) { try verifier.verify(farFuture, nowUnix: TestTokens.now) }
    #expect(throws: Never.self) { try verifier.verify(farFuture, nowUnix: Int64.min) }
    let pastEverything = TestTokens.craft(payload: TestTokens.payload(["exp": "\(Int64.min)", "iat": "\(Int64.max)"]))
    #expect(throws: AuthError.expired) { try verifier.verify(pastEverything, nowUnix: Int64.max) }
}

/// RFC 7515 Appendix A.1: the HS256 example token and key. Its claims are
/// not ours (no aud), so getting past the signature to the audience check
/// shows our HMAC and base64url agree with the RFC.
@Test func rfc7515ExampleSignatureVerifies() {
    let jwk = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
    let key = Base64URL.decode(Array(jwk.utf8)) ?? []
    #expect(key.count == 64)
    let token =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    let verifier = JWTVerifier(secret: key, issuer: "joe", audience: "billing")
    #expect(throws: AuthError.wrongAudience) { try verifier.verify(token, nowUnix: 1_300_819_000) }
    #expect(throws: AuthError.expired) { try verifier.verify(token, nowUnix: 1_300_819_380 + 60) }
    let otherKey = JWTVerifier(secret: Array("not the key".utf8), issuer: "joe", audience: "billing")
    #expect(throws: AuthError.badSignature) { try otherKey.verify(token, nowUnix: 1_300_819_000) }
}
