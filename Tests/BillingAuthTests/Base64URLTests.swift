import BillingCore
import BillingAuth
import Testing

@Test func base64URLMatchesRFC4648Vectors() {
    let vectors = ["": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"]
    for (plain, encoded) in vectors {
        #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
        #expect(Base64URL.decode(Array(encoded.utf8)) == Array(plain.utf8))
    }
    // The URL-safe alphabet: 0xfb 0xff encodes to "-_8" where base64 has "+/8".
    #expect(Base64URL.encode([0xfb, 0xff]) == "-_8")
}

@Test func base64URLRoundTripsEveryLength() {
    var rng = SplitMix64(seed: 0xB64)
    for length in 0..<100 {
        let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
        #expect(Base64URL.decode(Array(Base64URL.encode(bytes).utf8)) == bytes, "length \(length)")
    }
}

@Test(arguments: ["Zg==", "Zg=", "Z", "Zm9vY", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm9v\n", " Zm9v", "Zm.v", "Zm9vé"])
func base64URLRefusesNonCanonicalText(text: String) {
    #expect(Base64URL.decode(Array(text.utf8)) == nil)
}
