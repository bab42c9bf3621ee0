internal import COpenSSL
public import Foundation

/// The libcrypto primitives credential checks need: SHA-256, HMAC-SHA256,
/// a constant-time comparison and the CSPRNG. Lives here because TLS is the
/// one module that imports COpenSSL; BillingAuth builds on it.
///
/// Every function here either succeeds or stops the process: a failure means
/// libcrypto itself is broken (no SHA-256, no entropy), which is our bug or
/// a broken host, never the caller's input.
public enum OpenSSLCrypto {
    /// Bytes in a SHA-256 digest, and so in an HMAC-SHA256 tag.
    public static let sha256Length = 32

    /// SHA-256 fetched from the default provider once. `EVP_sha256()` is a
    /// legacy handle that every `EVP_Digest` resolves again (name lookups
    /// and a lock: 376 ns for a 160-byte debit fingerprint on this machine,
    /// 196 ns with this; the hash itself is ~150). Never freed: it lives as
    /// long as the process.
    nonisolated(unsafe) private static let sha256Digest: OpaquePointer = {
        guard let digest = EVP_MD_fetch(nil, "SHA256", nil) else { preconditionFailure("libcrypto has no SHA-256") }
        return digest
    }()

    /// HMAC-SHA256 (RFC 2104) of `message` under `key`. Any key length works;
    /// keys longer than the 64-byte block are hashed first, as the RFC says.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        precondition(key.count <= Int(Int32.max), "HMAC key longer than libcrypto accepts")
        var tag = [UInt8](repeating: 0, count: sha256Length)
        var tagLength: UInt32 = 0
        let result = withBytes(key) { keyBytes, keyCount in
            withBytes(message) { messageBytes, messageCount in
                tag.withUnsafeMutableBufferPointer { out in
                    HMAC(sha256Digest, keyBytes, Int32(keyCount), messageBytes, messageCount, out.baseAddress, &tagLength)
                }
            }
        }
        precondition(result != nil && tagLength == UInt32(sha256Length), "libcrypto HMAC-SHA256 failed")
        return tag
    }

    /// SHA-256 (FIPS 180-4) of `bytes`.
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: sha256Length)
        var digestLength: UInt32 = 0
        let status = withBytes(bytes) { input, count in
            digest.withUnsafeMutableBufferPointer { out in
                EVP_Digest(input, count, out.baseAddress, &digestLength, sha256Digest, nil)
            }
        }
        precondition(status == 1 && digestLength == UInt32(sha256Length), "libcrypto SHA-256 failed")
        return digest
    }

    /// SHA-256 of the bytes in place, as `Data` (what a journaled request
    /// hash is stored as: no array, no second copy).
    public static func sha256Data(_ bytes: UnsafeRawBufferPointer) -> Data {
        var digest = Data(count: sha256Length)
        var digestLength: UInt32 = 0
        let status = digest.withUnsafeMutableBytes { out in
            withUnsafePointer(to: UInt8(0)) { empty in
                EVP_Digest(bytes.baseAddress ?? UnsafeRawPointer(empty), bytes.count,
                           out.baseAddress!.assumingMemoryBound(to: UInt8.self), &digestLength, sha256Digest, nil)
            }
        }
        precondition(status == 1 && digestLength == UInt32(sha256Length), "libcrypto SHA-256 failed")
        return digest
    }

    /// Whether `a` and `b` hold the same bytes, in time that depends only on
    /// their lengths (CRYPTO_memcmp), never on where they first differ.
    /// Different lengths compare unequal after the same full scan.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let count = min(a.count, b.count)
        let difference = withBytes(a) { aBytes, _ in
            withBytes(b) { bBytes, _ in CRYPTO_memcmp(aBytes, bBytes, count) }
        }
        // Folded without a short-circuit so the length check adds no branch on the data.
        return (Int(difference) | (a.count ^ b.count)) == 0
    }

    /// `count` bytes from OpenSSL's CSPRNG (RAND_bytes). Stops the process
    /// if the generator cannot be seeded: a key made without entropy would
    /// be worse than no key.
    public static func randomBytes(count: Int) -> [UInt8] {
        precondition(count >= 0 && count <= Int(Int32.max), "random byte count out of range")
        var bytes = [UInt8](repeating: 0, count: count)
        if count == 0 { return bytes }
        let status = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        precondition(status == 1, "RAND_bytes failed: the CSPRNG is not seeded")
        return bytes
    }

    /// Calls `body` with a pointer that is never nil, even for an empty
    /// array (whose buffer may have no base address): libcrypto treats a
    /// NULL key or message differently from an empty one.
    private static func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
        bytes.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { return body(base, buffer.count) }
            return withUnsafePointer(to: UInt8(0)) { body($0, 0) }
        }
    }
}
