import BillingAuth
import TLS
import Testing

@Test func generatedKeyParsesHashesAndMatches() {
    let key = ApiKeyMaterial.generate()

    #expect(key.token.utf8.count == ApiKeyToken.tokenLength)
    #expect(key.token.hasPrefix("bk_\(key.keyID)_"))
    let parsed = ApiKeyToken.parse(key.token)
    #expect(parsed?.keyID == key.keyID)
    #expect(parsed?.secret == String(key.token.dropFirst(3 + 12 + 1)))
    #expect(key.hash == OpenSSLCrypto.sha256(Array(key.token.utf8)))
    #expect(key.hash == ApiKeyToken.hash(key.token))
    #expect(ApiKeyToken.matches(token: key.token, storedHash: key.hash))
}

@Test func keysAreUniqueAndOnlyTheirOwnTokenMatches() {
    let first = ApiKeyMaterial.generate()
    let second = ApiKeyMaterial.generate()

    #expect(first.keyID != second.keyID)
    #expect(first.token != second.token)
    #expect(!ApiKeyToken.matches(token: second.token, storedHash: first.hash))
    #expect(!ApiKeyToken.matches(token: first.token, storedHash: Array(first.hash.prefix(31))))
    #expect(!ApiKeyToken.matches(token: first.token, storedHash: []))
    // Same key id, different secret: the hash covers the whole token.
    let forged = "bk_\(first.keyID)_" + String(second.token.dropFirst(16))
    #expect(ApiKeyToken.parse(forged) != nil)
    #expect(!ApiKeyToken.matches(token: forged, storedHash: first.hash))
}

/// A fixed well-formed key: 12 hex, then the base64url of 32 zero bytes
/// with the last byte 1 (43 characters, last one canonical).
let sampleKey = "bk_0123456789ab_" + String(repeating: "A", count: 41) + "AE"

@Test func sampleKeyIsWellFormed() {
    #expect(ApiKeyToken.parse(sampleKey)?.keyID == "0123456789ab")
}

@Test(arguments: [
    "",
    "bk_",
    "bk__",
    "BK_0123456789ab_" + String(repeating: "A", count: 41) + "AE",
    "bk-0123456789ab_" + String(repeating: "A", count: 41) + "AE",
    "bk_0123456789AB_" + String(repeating: "A", count: 41) + "AE",  // upper-case hex
    "bk_0123456789ag_" + String(repeating: "A", count: 41) + "AE",  // not hex
    "bk_0123456789a_A" + String(repeating: "A", count: 41) + "AE",  // 11-char key id
    "bk_0123456789ab-" + String(repeating: "A", count: 41) + "AE",
    "bk_0123456789ab_" + String(repeating: "A", count: 41) + "A",  // 42-char secret
    "bk_0123456789ab_" + String(repeating: "A", count: 41) + "AEA",  // 44-char secret
    "bk_0123456789ab_" + String(repeating: "A", count: 41) + "AB",  // non-canonical last character
    "bk_0123456789ab_" + String(repeating: "A", count: 41) + "A=",
    "bk_0123456789ab_" + String(repeating: "A", count: 41) + "A+",
    "bk_0123456789ab_" + String(repeating: "A", count: 41) + "A/",
    "bk_0123456789ab_" + String(repeating: "A", count: 41) + "AE\n",
    " bk_0123456789ab_" + String(repeating: "A", count: 41) + "AE",
    "bk_0123456789ab_" + String(repeating: "A", count: 40) + "éE",
    "bk_0123456789ab_" + String(repeating: "A", count: 10_000),
])
func malformedKeysDoNotParse(token: String) {
    #expect(ApiKeyToken.parse(token) == nil)
}
