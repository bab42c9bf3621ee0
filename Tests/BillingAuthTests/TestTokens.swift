import BillingAuth
import TLS

/// Shared fixtures: one secret, issuer and audience, a fixed "now", and
/// helpers that craft tokens byte by byte (including ones our signer
/// would never make).
enum TestTokens {
    static let secretText = "correct-horse-battery-staple-0123456789-abcdef"
    static let secret = Array(secretText.utf8)
    static let otherSecret = Array("another-platform-secret-that-is-not-ours-000".utf8)
    static let issuer = "https://platform.example"
    static let audience = "billing"
    static let now: Int64 = 1_750_000_000

    static let verifier = JWTVerifier(secret: secret, issuer: issuer, audience: audience)

    static let claims = UserClaims(
        userID: "user-1", accountID: "acct-1", role: .owner, permissions: ["billing:read"],
        expiresAt: now + 3600)

    /// A token our signer makes for `claims`, valid at `now`.
    static func valid(claims: UserClaims = claims, secret: [UInt8] = secret) -> String {
        JWTSigner.sign(
            claims: claims, issuedAt: now - 10, expiresAt: claims.expiresAt, issuer: issuer, audience: audience,
            secret: secret)
    }

    static let header = #"{"alg":"HS256","typ":"JWT"}"#

    /// The claims JSON of a good token, with `overrides` replacing (or, as
    /// nil, removing) members. Values are raw JSON text.
    static func payload(_ overrides: [String: String?] = [:]) -> String {
        var members: [String: String] = [
            "sub": #""user-1""#, "account_id": #""acct-1""#, "role": #""owner""#,
            "permissions": #"["billing:read"]"#, "iss": "\"\(issuer)\"", "aud": "\"\(audience)\"",
            "iat": "\(now - 10)", "exp": "\(now + 3600)",
        ]
        for (name, value) in overrides { members[name] = value }
        return "{" + members.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
    }

    /// header.payload.signature with an HS256 signature under `secret` over
    /// whatever bytes are given.
    static func craft(header: String = header, payload: String = payload(), secret: [UInt8] = secret) -> String {
        craft(headerBytes: Array(header.utf8), payloadBytes: Array(payload.utf8), secret: secret)
    }

    static func craft(headerBytes: [UInt8], payloadBytes: [UInt8], secret: [UInt8] = secret) -> String {
        let input = Base64URL.encode(headerBytes) + "." + Base64URL.encode(payloadBytes)
        return input + "." + Base64URL.encode(OpenSSLCrypto.hmacSHA256(key: secret, message: Array(input.utf8)))
    }

    /// header.payload. with an empty signature, as `alg: none` tokens come.
    static func unsigned(header: String, payload: String = payload()) -> String {
        Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8)) + "."
    }
}

extension Array where Element == UInt8 {
    init(hex: String) {
        let digits = Array(hex.utf8)
        self = stride(from: 0, to: digits.count, by: 2).map { index in
            UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16)!
        }
    }
}
