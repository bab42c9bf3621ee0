/// Reads `authorization: Bearer <token>` (RFC 6750 §2.1).
public enum BearerCredential {
    /// Longest token read, in bytes; the JWT verifier's default limit.
    public static let maxTokenBytes = 8192

    /// The credential in an authorization header value. The scheme is
    /// matched without case and followed by exactly one space; the token
    /// must be RFC 6750's b64token (letters, digits, "-._~+/", then any
    /// '='), which also shuts out spaces, CR/LF and other control bytes.
    /// A token starting "bk_" is an API key and must have a key's exact
    /// shape; any other token is taken for a JWT.
    public static func parse(authorizationHeader: String?) -> Result<Credential, AuthError> {
        guard let header = authorizationHeader else { return .failure(.missing) }
        let scheme = "bearer "
        guard header.utf8.count <= scheme.utf8.count + maxTokenBytes else { return .failure(.tooLarge) }
        let bytes = Array(header.utf8)
        guard bytes.count > scheme.utf8.count,
            zip(bytes, scheme.utf8).allSatisfy({ asciiLowercased($0) == $1 })
        else { return .failure(.malformed("expected Bearer scheme and a token")) }
        let token = bytes[scheme.utf8.count...]
        guard isB64Token(token) else { return .failure(.malformed("token has characters outside base64")) }

        let text = String(decoding: token, as: UTF8.self)
        guard token.starts(with: ApiKeyToken.prefix.utf8) else { return .success(.jwt(text)) }
        guard let key = ApiKeyToken.parse(text) else { return .failure(.malformed("not a valid API key")) }
        return .success(.apiKey(keyID: key.keyID, token: text))
    }

    /// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    private static func isB64Token(_ token: ArraySlice<UInt8>) -> Bool {
        let body = token.prefix { $0 != UInt8(ascii: "=") }
        guard !body.isEmpty, token[body.endIndex...].allSatisfy({ $0 == UInt8(ascii: "=") }) else { return false }
        return body.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || "-._~+/".utf8.contains(byte)
        }
    }

    private static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }
}
