import BillingCore
@testable import TLS
import Testing

/// OpenSSL's memory BIO keeps the largest size it ever held: a burst of
/// answers encrypted in one write (4 MB) stayed allocated for the
/// connection's life, twice over with the plaintext buffer (a review
/// measured ~8.5 MiB per idle TLS connection after one 4 MB answer).
/// Written in slices, the BIO holds one slice at a time.
@Test func aLargeWriteInSlicesLeavesNoBurstAllocated() throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(server: try fixtures.serverContext(), client: try fixtures.clientContext())
    pair.pump()
    #expect(pair.isEstablished)

    var random = SplitMix64(seed: 27)
    let burst = (0..<(4 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }
    var ciphertext: [UInt8] = []
    try pair.server.engine.writePlaintext(burst, drainingInto: &ciphertext)
    #expect(ciphertext.count > burst.count)
    #expect(pair.server.engine.ciphertextBufferCapacity <= 256 * 1024)  // (4 MB written at once: 4.5 MB)

    var none: SplitMix64?
    pair.client.receive(ciphertext, random: &none, maxPiece: .max)
    #expect(pair.client.error == nil)
    #expect(pair.client.plaintext == burst)
}
