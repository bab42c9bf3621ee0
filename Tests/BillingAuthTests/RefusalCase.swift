import BillingAuth
import Testing

/// A token the verifier must refuse, and the reason it must give.
struct RefusalCase: Sendable, CustomTestStringConvertible {
    let name: String
    let token: String
    let expected: AuthError
    var testDescription: String { name }

    init(_ name: String, _ token: String, _ expected: AuthError) {
        self.name = name
        self.token = token
        self.expected = expected
    }
}

extension RefusalCase {
    static func claims(_ name: String, _ overrides: [String: String?], _ expected: AuthError) -> RefusalCase {
        RefusalCase(name, TestTokens.craft(payload: TestTokens.payload(overrides)), expected)
    }

    static let all: [RefusalCase] = algorithm + signature + time + audience + claims + shape

    static let algorithm: [RefusalCase] = [
        RefusalCase("alg none, empty signature", TestTokens.unsigned(header: #"{"alg":"none"}"#), .unsupportedAlgorithm("none")),
        RefusalCase(
            "alg none with typ, empty signature", TestTokens.unsigned(header: #"{"alg":"none","typ":"JWT"}"#),
            .unsupportedAlgorithm("none")),
        RefusalCase(
            "alg none, signed anyway", TestTokens.craft(header: #"{"alg":"none","typ":"JWT"}"#),
            .unsupportedAlgorithm("none")),
        RefusalCase("alg HS512", TestTokens.craft(header: #"{"alg":"HS512","typ":"JWT"}"#), .unsupportedAlgorithm("HS512")),
        RefusalCase("alg RS256", TestTokens.craft(header: #"{"alg":"RS256","typ":"JWT"}"#), .unsupportedAlgorithm("RS256")),
        RefusalCase("alg lower-case hs256", TestTokens.craft(header: #"{"alg":"hs256"}"#), .unsupportedAlgorithm("hs256")),
        RefusalCase(
            "alg with a secret-looking value",
            TestTokens.craft(header: "{\"alg\":\"\(TestTokens.secretText)\"}"), .unsupportedAlgorithm("(unprintable)")),
        RefusalCase("alg missing", TestTokens.craft(header: #"{"typ":"JWT"}"#), .malformed("header has no alg")),
        RefusalCase("alg not a string", TestTokens.craft(header: #"{"alg":256}"#), .malformed("header has no alg")),
        RefusalCase("typ JOSE+JSON", TestTokens.craft(header: #"{"alg":"HS256","typ":"JOSE+JSON"}"#), .malformed("typ must be JWT")),
        RefusalCase(
            "crit extension", TestTokens.craft(header: #"{"alg":"HS256","crit":["exp"],"exp":1}"#),
            .malformed("crit extensions are not supported")),
    ]

    static let signature: [RefusalCase] = {
        let good = TestTokens.valid()
        let parts = good.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let forged = TestTokens.craft(payload: TestTokens.payload(["account_id": #""acct-2""#]))
        let forgedPayload = forged.split(separator: ".")[1]
        let reordered = TestTokens.craft(header: #"{"typ":"JWT","alg":"HS256"}"#)
        return [
            RefusalCase("signed with another secret", TestTokens.valid(secret: TestTokens.otherSecret), .badSignature),
            RefusalCase("payload swapped for another account", "\(parts[0]).\(forgedPayload).\(parts[2])", .badSignature),
            RefusalCase("signature removed", "\(parts[0]).\(parts[1]).", .badSignature),
            RefusalCase("signature truncated to 30 bytes", "\(parts[0]).\(parts[1]).\(parts[2].prefix(40))", .badSignature),
            RefusalCase("header re-encoded", "\(reordered.split(separator: ".")[0]).\(parts[1]).\(parts[2])", .badSignature),
        ]
    }()

    static let time: [RefusalCase] = [
        .claims("expired", ["exp": "\(TestTokens.now - 3600)"], .expired),
        .claims("expired beyond leeway", ["exp": "\(TestTokens.now - 61)"], .expired),
        .claims("nbf in the future", ["nbf": "\(TestTokens.now + 3600)"], .notYetValid),
        .claims("iat in the future", ["iat": "\(TestTokens.now + 3600)"], .notYetValid),
    ]

    static let audience: [RefusalCase] = [
        .claims("wrong iss", ["iss": #""https://evil.example""#], .wrongIssuer),
        .claims("iss missing", ["iss": nil], .wrongIssuer),
        .claims("iss as array", ["iss": "[\"\(TestTokens.issuer)\"]"], .wrongIssuer),
        .claims("wrong aud", ["aud": #""web""#], .wrongAudience),
        .claims("aud array without ours", ["aud": #"["web","admin"]"#], .wrongAudience),
        .claims("aud array with a non-string", ["aud": #"["billing",1]"#], .wrongAudience),
        .claims("aud missing", ["aud": nil], .wrongAudience),
        .claims("aud empty array", ["aud": "[]"], .wrongAudience),
    ]

    static let claims: [RefusalCase] = [
        .claims("exp missing", ["exp": nil], .invalidClaims("exp is required")),
        .claims("exp as string", ["exp": "\"\(TestTokens.now + 3600)\""], .invalidClaims("exp must be an integer")),
        .claims("exp with fraction", ["exp": "\(TestTokens.now + 3600).5"], .invalidClaims("exp must be an integer")),
        .claims("exp as boolean", ["exp": "true"], .invalidClaims("exp must be an integer")),
        .claims("exp as null", ["exp": "null"], .invalidClaims("exp must be an integer")),
        .claims("exp beyond Int64", ["exp": "1e30"], .invalidClaims("exp must be an integer")),
        .claims("nbf with fraction", ["nbf": "1.5"], .invalidClaims("nbf must be an integer")),
        .claims("iat as string", ["iat": #""yesterday""#], .invalidClaims("iat must be an integer")),
        .claims("sub missing", ["sub": nil], .invalidClaims("sub is required")),
        .claims("sub empty", ["sub": #""""#], .invalidClaims("sub is required")),
        .claims("sub a number", ["sub": "42"], .invalidClaims("sub is required")),
        .claims("sub with a newline", ["sub": #""user-1\nuser: admin""#], .invalidClaims("sub has control or invisible characters, a space at an end, or is not in Unicode NFC")),
        .claims("sub too long", ["sub": "\"\(String(repeating: "u", count: 257))\""], .invalidClaims("sub is too long")),
        // (Session 29: these were taken, and the audit log showed them as sent.)
        .claims("sub with a direction override", ["sub": #""mallory\u202Etoor""#], .invalidClaims("sub has control or invisible characters, a space at an end, or is not in Unicode NFC")),
        .claims("sub with a line separator", ["sub": #""user-1\u2028key: admin""#], .invalidClaims("sub has control or invisible characters, a space at an end, or is not in Unicode NFC")),
        .claims("sub with a zero-width space", ["sub": #""user-1\u200B""#], .invalidClaims("sub has control or invisible characters, a space at an end, or is not in Unicode NFC")),
        .claims("sub ending in a space", ["sub": #""user-1 ""#], .invalidClaims("sub has control or invisible characters, a space at an end, or is not in Unicode NFC")),
        .claims("sub decomposed (not NFC)", ["sub": #""Jose\u0301""#], .invalidClaims("sub has control or invisible characters, a space at an end, or is not in Unicode NFC")),
        .claims("account_id with a zero-width space", ["account_id": #""acct-1\u200B""#],
                .invalidClaims("account_id has control or invisible characters, a space at an end, or is not in Unicode NFC")),
        .claims("account_id missing", ["account_id": nil], .invalidClaims("account_id is required")),
        .claims("account_id empty", ["account_id": #""""#], .invalidClaims("account_id is required")),
        .claims("role missing", ["role": nil], .invalidClaims("role is required")),
        .claims("role empty", ["role": #""""#], .invalidClaims("role is required")),
        .claims("role as array", ["role": #"["owner"]"#], .invalidClaims("role is required")),
        .claims("permissions as string", ["permissions": #""billing:read""#], .invalidClaims("permissions must be an array of strings")),
        .claims("permissions with a number", ["permissions": #"["billing:read",1]"#], .invalidClaims("permissions must be an array of strings")),
    ]

    static let shape: [RefusalCase] = {
        let good = TestTokens.valid()
        let parts = good.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let notBase64 = RefusalCase.notBase64
        return [
            RefusalCase("empty", "", .malformed("expected three dot-separated segments")),
            RefusalCase("one segment", parts[0], .malformed("expected three dot-separated segments")),
            RefusalCase("two segments", "\(parts[0]).\(parts[1])", .malformed("expected three dot-separated segments")),
            RefusalCase("four segments", good + ".\(parts[2])", .malformed("expected three dot-separated segments")),
            RefusalCase("only dots", "..", .malformed("header is not a JSON object")),
            RefusalCase("garbage segments", "abc.def.ghi", notBase64),
            RefusalCase("empty objects", "e30.e30.e30", .malformed("header has no alg")),
            RefusalCase("lone character segment", "a.b.c", notBase64),
            RefusalCase("padded header", "\(parts[0])=.\(parts[1]).\(parts[2])", notBase64),
            RefusalCase("standard base64 characters", "\(parts[0]).\(parts[1]).\(parts[2].dropLast(3))A+/", notBase64),
            RefusalCase("space inside", "\(parts[0]). \(parts[1]).\(parts[2])", notBase64),
            RefusalCase("non-ASCII", "\(parts[0]).\(parts[1])é.\(parts[2])", notBase64),
            RefusalCase("header is an array", TestTokens.craft(header: #"["HS256"]"#), .malformed("header is not a JSON object")),
            RefusalCase(
                "header nested deeply",
                TestTokens.craft(header: String(repeating: "[", count: 4000)), .malformed("header is not a JSON object")),
            RefusalCase(
                "header not UTF-8",
                TestTokens.craft(headerBytes: [0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d], payloadBytes: Array("{}".utf8)),
                .malformed("header is not a JSON object")),
            RefusalCase("payload is an array", TestTokens.craft(payload: "[1,2]"), .malformed("payload is not a JSON object")),
            // A member named twice (RFC 7519 §4; session 29: the first was
            // taken, where most parsers take the last), also spelled with
            // an escape, and in the header.
            RefusalCase(
                "payload names account_id twice",
                TestTokens.craft(payload: String(TestTokens.payload().dropLast()) + #","account_id":"other"}"#),
                .malformed("payload is not a JSON object")),
            RefusalCase(
                "payload names role twice, once escaped",
                TestTokens.craft(payload: String(TestTokens.payload().dropLast()) + #","r\u006fle":"viewer"}"#),
                .malformed("payload is not a JSON object")),
            RefusalCase(
                "header names alg twice", TestTokens.craft(header: #"{"alg":"HS256","typ":"JWT","alg":"none"}"#),
                .malformed("header is not a JSON object")),
            RefusalCase("payload has trailing text", TestTokens.craft(payload: TestTokens.payload() + "x"), .malformed("payload is not a JSON object")),
            RefusalCase(
                "oversized", TestTokens.craft(payload: TestTokens.payload(["pad": "\"\(String(repeating: "x", count: 7000))\""])),
                .tooLarge),
        ]
    }()

    static let notBase64 = AuthError.malformed("segment is not unpadded base64url")
}
