internal import TLS

/// The text form of an API key: `bk_<keyid>_<secret>`, where keyid is 12
/// lower-case hex characters and secret is 43 base64url characters (32
/// random bytes). The key id is public (it names the key in lists and the
/// audit log); the whole token is the secret and is stored only as a hash.
public enum ApiKeyToken {
    public static let prefix = "bk_"
    public static let keyIDLength = 12
    public static let secretLength = 43
    /// "bk_" + key id + "_" + secret.
    public static let tokenLength = 3 + keyIDLength + 1 + secretLength

    /// Splits a token into key id and secret, or nil unless it has exactly
    /// the generated shape. Checks the length before reading anything else.
    public static func parse(_ token: String) -> (keyID: String, secret: String)? {
        let bytes = Array(token.utf8.prefix(tokenLength + 1))
        guard bytes.count == tokenLength, bytes.starts(with: prefix.utf8) else { return nil }
        let keyIDEnd = prefix.utf8.count + keyIDLength
        let keyID = bytes[prefix.utf8.count..<keyIDEnd]
        guard keyID.allSatisfy(isLowerHex), bytes[keyIDEnd] == UInt8(ascii: "_") else { return nil }
        let secret = bytes[(keyIDEnd + 1)...]
        guard let secretBytes = Base64URL.decode(secret), secretBytes.count == 32 else { return nil }
        return (String(decoding: keyID, as: UTF8.self), String(decoding: secret, as: UTF8.self))
    }

    /// What the key store keeps: SHA-256 of the token's UTF-8 bytes. The
    /// secret is 256 random bits, so a fast unsalted hash is enough.
    public static func hash(_ token: String) -> [UInt8] {
        OpenSSLCrypto.sha256(Array(token.utf8))
    }

    /// Whether `token` is the key whose hash is `storedHash`, compared in
    /// constant time.
    public static func matches(token: String, storedHash: [UInt8]) -> Bool {
        matches(hash: hash(token), storedHash: storedHash)
    }

    /// Whether a presented token's `hash` is `storedHash`, in constant time.
    public static func matches(hash: [UInt8], storedHash: [UInt8]) -> Bool {
        OpenSSLCrypto.constantTimeEqual(hash, storedHash)
    }

    /// Whether `id` has a key id's shape (12 lower-case hex characters).
    public static func isKeyID(_ id: String) -> Bool {
        id.utf8.count == keyIDLength && id.utf8.allSatisfy(isLowerHex)
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
