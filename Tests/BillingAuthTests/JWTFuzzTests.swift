import BillingCore
import BillingAuth
import Testing

/// Seeded random input: the verifier must never crash and never accept
/// anything but a token we signed. A failure prints its seed and iteration.
enum Fuzz {
    static let base64URL = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    static let noise: [Character] = base64URL + [".", "=", "+", "/", " ", "\r", "\n", "\0", "\t", "é", "😀", "\u{7F}", "\u{2028}"]

    static func randomString(using rng: inout SplitMix64) -> String {
        let length = Int.random(in: 0...400, using: &rng)
        let dotted = Bool.random(using: &rng)
        return String((0..<length).map { _ in
            dotted && Int.random(in: 0..<40, using: &rng) == 0
                ? "." : noise[Int.random(in: 0..<(Bool.random(using: &rng) ? base64URL.count : noise.count), using: &rng)]
        })
    }

    /// One to three edits: replace, insert or delete a character, truncate,
    /// or swap two segments.
    static func mutate(_ token: String, using rng: inout SplitMix64) -> String {
        var characters = Array(token)
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let alphabet: [Character] = base64URL + ["."]
            switch Int.random(in: 0..<5, using: &rng) {
            case 0 where !characters.isEmpty:
                characters[Int.random(in: 0..<characters.count, using: &rng)] = alphabet.randomElement(using: &rng)!
            case 1:
                characters.insert(alphabet.randomElement(using: &rng)!, at: Int.random(in: 0...characters.count, using: &rng))
            case 2 where !characters.isEmpty:
                characters.remove(at: Int.random(in: 0..<characters.count, using: &rng))
            case 3:
                characters = Array(characters.prefix(Int.random(in: 0...characters.count, using: &rng)))
            default:
                var segments = String(characters).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                if segments.count >= 2 {
                    segments.swapAt(0, Int.random(in: 1..<segments.count, using: &rng))
                    characters = Array(segments.joined(separator: "."))
                }
            }
        }
        return String(characters)
    }
}

@Test func randomStringsAreRefused() {
    let seed: UInt64 = 0x5EED_0001
    var rng = SplitMix64(seed: seed)
    for iteration in 0..<3000 {
        let input = Fuzz.randomString(using: &rng)
        #expect(throws: AuthError.self, "seed \(seed) iteration \(iteration)") {
            try TestTokens.verifier.verify(input, nowUnix: TestTokens.now)
        }
    }
}

@Test func mutatedTokensAreRefused() {
    let seed: UInt64 = 0x5EED_0002
    var rng = SplitMix64(seed: seed)
    let originals = [
        TestTokens.valid(),
        TestTokens.craft(payload: TestTokens.payload(["aud": #"["web","billing"]"#])),
        TestTokens.valid(claims: UserClaims(userID: "u", accountID: "a", role: .viewer, expiresAt: TestTokens.now + 1)),
    ]
    for original in originals {
        #expect(throws: Never.self) { try TestTokens.verifier.verify(original, nowUnix: TestTokens.now) }
    }
    var mutatedCount = 0
    for iteration in 0..<3000 {
        let original = originals[iteration % originals.count]
        let mutated = Fuzz.mutate(original, using: &rng)
        if mutated == original { continue }
        mutatedCount += 1
        #expect(throws: AuthError.self, "seed \(seed) iteration \(iteration): \(mutated)") {
            try TestTokens.verifier.verify(mutated, nowUnix: TestTokens.now)
        }
    }
    #expect(mutatedCount > 2900)
}

/// Correctly signed tokens over random header and payload bytes: this
/// reaches the JSON parsing of both. Nothing may crash; whatever is
/// accepted must have passed every claim check.
@Test func signedRandomBytesNeverCrash() {
    let seed: UInt64 = 0x5EED_0003
    var rng = SplitMix64(seed: seed)
    let fragments = [
        "{", "}", "[", "]", ",", ":", "\"", "\"alg\"", "\"HS256\"", "\"exp\"", "\"sub\"", "\"aud\"", "\"iss\"",
        "\"billing\"", "\"role\"", "\"owner\"", "\"permissions\"", "\"account_id\"", "1", "-0", "1.5", "1e400",
        "9223372036854775808", "true", "null", "\\u0000", "\\ud800", "\"\\", "é", " ",
    ]
    var accepted = 0
    for iteration in 0..<2000 {
        let payload: [UInt8]
        if iteration % 2 == 0 {
            payload = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        } else {
            let text = (0..<Int.random(in: 0...60, using: &rng)).map { _ in fragments.randomElement(using: &rng)! }.joined()
            payload = Array(text.utf8)
        }
        let header = iteration % 3 == 0 ? payload : Array(TestTokens.header.utf8)
        let token = TestTokens.craft(headerBytes: header, payloadBytes: payload)
        do {
            let claims = try TestTokens.verifier.verify(token, nowUnix: TestTokens.now)
            accepted += 1
            #expect(!claims.userID.isEmpty && !claims.accountID.isEmpty, "seed \(seed) iteration \(iteration)")
        } catch {
            continue
        }
    }
    // Random bytes make a complete valid claims set only by extreme luck.
    #expect(accepted == 0)
}
