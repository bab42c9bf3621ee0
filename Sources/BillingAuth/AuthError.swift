/// Why a credential was refused. Every case maps to UNAUTHENTICATED; the
/// distinction is for logs and tests.
///
/// No case carries the token, the key, the secret or the signature: the
/// strings are fixed reasons chosen here (or, for an algorithm name, a
/// short alphanumeric name and nothing else), so `message` is safe to log
/// and to send back to the caller.
public enum AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No authorization header.
    case missing
    /// Not a credential we can read; the reason names the part, never its content.
    case malformed(String)
    /// The JWT's signature is not ours.
    case badSignature
    /// `exp` has passed (beyond the allowed clock skew).
    case expired
    /// `nbf` or `iat` lies in the future (beyond the allowed clock skew).
    case notYetValid
    case wrongIssuer
    case wrongAudience
    /// The header names an algorithm other than HS256.
    case unsupportedAlgorithm(String)
    /// The credential is longer than we read.
    case tooLarge
    /// Signed by us but the claims are missing or of the wrong type.
    case invalidClaims(String)

    public var message: String {
        switch self {
        case .missing: "missing authorization header"
        case .malformed(let reason): "malformed token: \(reason)"
        case .badSignature: "signature mismatch"
        case .expired: "token expired"
        case .notYetValid: "token not yet valid"
        case .wrongIssuer: "token issuer not accepted"
        case .wrongAudience: "token audience not accepted"
        case .unsupportedAlgorithm(let name): "algorithm \(name) is not accepted"
        case .tooLarge: "credential too large"
        case .invalidClaims(let reason): "invalid claims: \(reason)"
        }
    }

    public var description: String { message }

    /// An algorithm name fit to repeat in a message: up to 16 ASCII letters,
    /// digits or '-', else a placeholder. The header is attacker-controlled.
    static func algorithmName(_ alg: String) -> String {
        let bytes = Array(alg.utf8)
        let printable = !bytes.isEmpty && bytes.count <= 16 && bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-")
        }
        return printable ? alg : "(unprintable)"
    }
}
