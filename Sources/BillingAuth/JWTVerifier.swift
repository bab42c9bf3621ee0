internal import TLS

/// Verifies the platform's user tokens: compact JWS (RFC 7515) signed with
/// HMAC-SHA256 under a shared secret, carrying JWT claims (RFC 7519).
///
/// Only HS256 is accepted, whatever the header asks for, so neither
/// `alg: none` nor an algorithm-confusion token gets past. The header is
/// read before the signature is checked (it says how to check it), so that
/// parse must survive any bytes; the claims are read only once signed.
public struct JWTVerifier: Sendable {
    /// The one algorithm we accept (RFC 7518 §3.2).
    public static let algorithm = "HS256"

    private let secret: [UInt8]
    public let issuer: String
    public let audience: String
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    public let leewaySeconds: Int64
    /// Longest token read; anything longer is refused before parsing.
    public let maxTokenBytes: Int

    public init(secret: [UInt8], issuer: String, audience: String, leewaySeconds: Int64 = 60, maxTokenBytes: Int = 8192) {
        precondition(!secret.isEmpty, "JWT secret must not be empty")
        precondition(leewaySeconds >= 0, "JWT leeway must not be negative")
        precondition(maxTokenBytes > 0, "JWT size limit must be positive")
        self.secret = secret
        self.issuer = issuer
        self.audience = audience
        self.leewaySeconds = leewaySeconds
        self.maxTokenBytes = maxTokenBytes
    }

    /// The claims of `token` if it is ours and current at `nowUnix`
    /// (seconds since the Unix epoch), else why not. Checks, in order:
    /// size, shape, header, signature, then claims.
    public func verify(_ token: String, nowUnix: Int64) throws(AuthError) -> UserClaims {
        guard token.utf8.count <= maxTokenBytes else { throw .tooLarge }
        let bytes = Array(token.utf8)
        let segments = bytes.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false)
        guard segments.count == 3 else { throw .malformed("expected three dot-separated segments") }
        guard let headerBytes = Base64URL.decode(segments[0]),
            let payloadBytes = Base64URL.decode(segments[1]),
            let signature = Base64URL.decode(segments[2])
        else { throw .malformed("segment is not unpadded base64url") }

        try checkHeader(headerBytes)

        // The signing input is the text up to the second dot (RFC 7515 §5.2).
        let signingInput = Array(bytes[..<segments[1].endIndex])
        let expected = OpenSSLCrypto.hmacSHA256(key: secret, message: signingInput)
        guard OpenSSLCrypto.constantTimeEqual(expected, signature) else { throw .badSignature }

        guard let claims = ClaimValue.object(payloadBytes) else { throw .malformed("payload is not a JSON object") }
        return try validate(claims, nowUnix: nowUnix)
    }

    private func checkHeader(_ headerBytes: [UInt8]) throws(AuthError) {
        guard let header = ClaimValue.object(headerBytes) else { throw .malformed("header is not a JSON object") }
        guard case .string(let alg)? = header["alg"] else { throw .malformed("header has no alg") }
        guard alg == Self.algorithm else { throw .unsupportedAlgorithm(AuthError.algorithmName(alg)) }
        if let typ = header["typ"] {
            // Media type names compare without case (RFC 7515 §4.1.9).
            guard case .string(let name) = typ, name.uppercased() == "JWT" else {
                throw .malformed("typ must be JWT")
            }
        }
        // We implement no header extensions, so any critical one is unknown (RFC 7515 §4.1.11).
        guard header["crit"] == nil else { throw .malformed("crit extensions are not supported") }
    }
}

extension JWTVerifier: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Names the issuer and audience; the secret is never shown.
    public var description: String {
        "JWTVerifier(issuer: \(issuer), audience: \(audience), leeway: \(leewaySeconds)s, secret: <redacted>)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["issuer": issuer, "audience": audience, "leewaySeconds": leewaySeconds], displayStyle: .struct)
    }
}
