internal import TLS

/// Makes new API keys. The token is shown to its owner once; only the key
/// id and the hash are kept.
public enum ApiKeyMaterial {
    public static func generate() -> (keyID: String, token: String, hash: [UInt8]) {
        let digits = Array("0123456789abcdef".utf8)
        let keyIDBytes = OpenSSLCrypto.randomBytes(count: ApiKeyToken.keyIDLength / 2)
            .flatMap { byte in [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]] }
        let keyID = String(decoding: keyIDBytes, as: UTF8.self)
        let secret = Base64URL.encode(OpenSSLCrypto.randomBytes(count: 32))
        let token = ApiKeyToken.prefix + keyID + "_" + secret
        precondition(ApiKeyToken.parse(token)?.keyID == keyID, "generated API key does not parse")
        return (keyID, token, ApiKeyToken.hash(token))
    }
}
