#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif
internal import TLS

/// Mints HS256 user tokens that `JWTVerifier` accepts: for tests, for the
/// demo Owner token `billing serve` prints, and for the token CLI. The
/// platform mints the real ones.
public enum JWTSigner {
    /// A compact JWS over `claims`. `exp` is `expiresAt` (the claims'
    /// `expiresAt` is ignored); `nbf` is written when `claims.notBefore` is set.
    public static func sign(
        claims: UserClaims, issuedAt: Int64, expiresAt: Int64, issuer: String, audience: String, secret: [UInt8]
    ) -> String {
        precondition(!secret.isEmpty, "JWT secret must not be empty")
        let payload = Payload(
            sub: claims.userID, account_id: claims.accountID, role: claims.role.rawValue,
            permissions: claims.permissions.sorted(), iss: issuer, aud: audience,
            iat: issuedAt, exp: expiresAt, nbf: claims.notBefore)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let payloadJSON: Data
        do {
            payloadJSON = try encoder.encode(payload)
        } catch {
            preconditionFailure("encoding JWT claims failed: \(error)")
        }
        let signingInput = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Base64URL.encode(Array(payloadJSON))
        let signature = OpenSSLCrypto.hmacSHA256(key: secret, message: Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// The claims as JSON names them. `nbf` is left out when nil.
    private struct Payload: Encodable {
        var sub: String
        var account_id: String
        var role: String
        var permissions: [String]
        var iss: String
        var aud: String
        var iat: Int64
        var exp: Int64
        var nbf: Int64?
    }
}
