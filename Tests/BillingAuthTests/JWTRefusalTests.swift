import BillingAuth
import Testing

@Test(arguments: RefusalCase.all)
func verifierRefuses(refusal: RefusalCase) {
    #expect(throws: refusal.expected) { try TestTokens.verifier.verify(refusal.token, nowUnix: TestTokens.now) }
}

/// Every refusal's message and description, and the verifier's own
/// description, are safe to log: no token, no segment, no secret.
@Test(arguments: RefusalCase.all)
func refusalMessagesLeakNothing(refusal: RefusalCase) {
    let error: AuthError
    do {
        _ = try TestTokens.verifier.verify(refusal.token, nowUnix: TestTokens.now)
        Issue.record("accepted")
        return
    } catch let caught {
        error = caught
    }
    let secrets = [TestTokens.secretText, String(TestTokens.secretText.prefix(12))]
        + (refusal.token.isEmpty ? [] : [refusal.token])
        + refusal.token.split(separator: ".").map(String.init).filter { $0.count >= 8 }
    for text in [error.message, error.description, String(reflecting: error)] {
        for secret in secrets {
            #expect(!text.contains(secret))
        }
    }
}

@Test func verifierDescriptionHidesTheSecret() {
    let verifier = TestTokens.verifier
    var dumped = ""
    dump(verifier, to: &dumped)
    for text in [String(describing: verifier), String(reflecting: verifier), dumped] {
        #expect(!text.contains(TestTokens.secretText))
        #expect(!text.contains(String(describing: TestTokens.secret)))
        #expect(text.contains(TestTokens.issuer))
    }
}

@Test func sizeLimitIsConfigurable() throws {
    let token = TestTokens.valid()
    let tight = JWTVerifier(
        secret: TestTokens.secret, issuer: TestTokens.issuer, audience: TestTokens.audience,
        maxTokenBytes: token.utf8.count - 1)
    #expect(throws: AuthError.tooLarge) { try tight.verify(token, nowUnix: TestTokens.now) }
    let exact = JWTVerifier(
        secret: TestTokens.secret, issuer: TestTokens.issuer, audience: TestTokens.audience,
        maxTokenBytes: token.utf8.count)
    #expect(try exact.verify(token, nowUnix: TestTokens.now).userID == "user-1")
}
