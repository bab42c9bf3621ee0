import BillingCore
import Foundation
import Testing
import TLS

/// Debit fingerprints are computed with OpenSSL in the service and with
/// BillingCore's pure-Swift SHA-256 in the ledger's tests: they must agree.
@Test(arguments: [0, 1, 55, 56, 63, 64, 65, 119, 1000])
func pureSwiftSHA256MatchesOpenSSL(length: Int) {
    // Seeded per length, so a failure names its input.
    var rng = SplitMix64(seed: 0x5AA2_56 &+ UInt64(length))
    let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
    #expect(SHA256.hash(bytes) == OpenSSLCrypto.sha256(bytes), "input \(bytes.map { String($0, radix: 16) })")
    // The form the service hashes a request's canonical bytes with: in place, into Data.
    #expect(bytes.withUnsafeBytes(OpenSSLCrypto.sha256Data) == Data(SHA256.hash(bytes)))
}
