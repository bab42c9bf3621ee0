import TLS
import Testing

struct HMACVector: Sendable, CustomTestStringConvertible {
    let name: String
    let key: [UInt8]
    let data: [UInt8]
    /// Expected tag in hex; test case 5 gives only the first 128 bits.
    let tag: String
    var testDescription: String { name }
}

/// RFC 4231 §4.2–4.8, HMAC-SHA-256 column.
let rfc4231: [HMACVector] = [
    HMACVector(
        name: "case 1", key: [UInt8](repeating: 0x0b, count: 20), data: Array("Hi There".utf8),
        tag: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    HMACVector(
        name: "case 2", key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8),
        tag: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    HMACVector(
        name: "case 3", key: [UInt8](repeating: 0xaa, count: 20), data: [UInt8](repeating: 0xdd, count: 50),
        tag: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    HMACVector(
        name: "case 4", key: Array(1...25), data: [UInt8](repeating: 0xcd, count: 50),
        tag: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    HMACVector(
        name: "case 5 (truncated)", key: [UInt8](repeating: 0x0c, count: 20), data: Array("Test With Truncation".utf8),
        tag: "a3b6167473100ee06e0c796c2955552b"),
    HMACVector(
        name: "case 6", key: [UInt8](repeating: 0xaa, count: 131),
        data: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
        tag: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    HMACVector(
        name: "case 7", key: [UInt8](repeating: 0xaa, count: 131),
        data: Array(
            ("This is a test using a larger than block-size key and a larger than block-size data."
                + " The key needs to be hashed before being used by the HMAC algorithm.").utf8),
        tag: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]

@Test(arguments: rfc4231)
func hmacSHA256MatchesRFC4231(vector: HMACVector) {
    let tag = OpenSSLCrypto.hmacSHA256(key: vector.key, message: vector.data)
    let expected = [UInt8](hex: vector.tag)
    #expect(tag.count == 32)
    #expect(Array(tag.prefix(expected.count)) == expected)
}

@Test func hmacSHA256AcceptsEmptyKeyAndMessage() {
    #expect(
        OpenSSLCrypto.hmacSHA256(key: [], message: [])
            == [UInt8](hex: "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"))
}

@Test func sha256OfKnownInputs() {
    #expect(
        OpenSSLCrypto.sha256(Array("abc".utf8))
            == [UInt8](hex: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
    #expect(
        OpenSSLCrypto.sha256([])
            == [UInt8](hex: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
}

@Test func constantTimeEqualComparesContentAndLength() {
    let a: [UInt8] = Array(0..<32)
    var lastDiffers = a
    lastDiffers[31] ^= 1
    var firstDiffers = a
    firstDiffers[0] ^= 0x80

    #expect(OpenSSLCrypto.constantTimeEqual(a, a))
    #expect(OpenSSLCrypto.constantTimeEqual([], []))
    #expect(!OpenSSLCrypto.constantTimeEqual(a, lastDiffers))
    #expect(!OpenSSLCrypto.constantTimeEqual(a, firstDiffers))
    #expect(!OpenSSLCrypto.constantTimeEqual(a, Array(a.prefix(31))))
    #expect(!OpenSSLCrypto.constantTimeEqual(Array(a.prefix(31)), a))
    #expect(!OpenSSLCrypto.constantTimeEqual([], a))
    #expect(!OpenSSLCrypto.constantTimeEqual(a, []))
}

@Test func randomBytesHaveTheAskedLengthAndDiffer() {
    #expect(OpenSSLCrypto.randomBytes(count: 0).isEmpty)
    let first = OpenSSLCrypto.randomBytes(count: 32)
    let second = OpenSSLCrypto.randomBytes(count: 32)
    #expect(first.count == 32)
    #expect(first != second)
}
