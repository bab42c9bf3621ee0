import BillingCore
import GRPC
@testable import BillingService
import Testing

/// `requireID` scans UTF-8 bytes for control characters; the rule it keeps
/// is stated on scalars: no control (C0, DEL, C1), format (zero-width,
/// direction marks, soft hyphen), separator, private-use or unassigned
/// scalar, and no whitespace at either end.
@Suite struct RequireIDTests {
    static func invisible(_ scalar: Unicode.Scalar) -> Bool {
        [.control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned]
            .contains(scalar.properties.generalCategory)
    }

    static func reason(_ value: String, _ field: String = "run_id") -> String? {
        do {
            try requireID(value, field)
            return nil
        } catch {
            return error.errorInfo?.reason
        }
    }

    @Test func everyScalarBelowU0100IsJudgedAsTheScalarRuleSays() {
        for value in UInt32(1)...0xFF {
            let scalar = Unicode.Scalar(value)!
            let control = value < 0x20 || (0x7F...0x9F).contains(value) || value == 0xAD  // (U+00AD: soft hyphen, a format character)
            #expect(Self.reason("a\(Character(scalar))b") == (control ? "INVALID_FIELD" : nil), "U+\(String(value, radix: 16))")
        }
        #expect(Self.reason("a\u{0}b") == "INVALID_FIELD")
    }

    /// Canonically equivalent texts compare equal in Swift but not in the
    /// ledger's hashes: only the composed form (NFC) is an id.
    @Test func onlyComposedTextIsAnID() {
        #expect(Self.reason("caf\u{E9}") == nil)
        #expect(Self.reason("cafe\u{301}") == "INVALID_FIELD")
        #expect(Self.reason("\u{1100}\u{1161}") == "INVALID_FIELD")  // Hangul jamo compose to U+AC00
        #expect(Self.reason("\u{AC00}") == nil)
        #expect(Self.reason("x\u{301}") == nil)  // nothing to compose with: already NFC
        #expect(Self.reason("plain-ascii_1") == nil)
        #expect("caf\u{E9}" == "cafe\u{301}")  // why: Swift's == says they are one
    }

    @Test func randomStringsAgreeWithTheScalarRule() {
        var reasons: [String?: Int] = [:]
        defer {
            // The draws reached every outcome.
            #expect(reasons[nil, default: 0] > 0 && reasons["INVALID_FIELD", default: 0] > 0 && reasons["FIELD_TOO_LONG", default: 0] > 0,
                    "\(reasons)")
        }
        var rng = SplitMix64(seed: 17)
        let pool: [UInt32] = [0x00, 0x09, 0x0A, 0x1F, 0x20, 0x41, 0x7E, 0x7F, 0x80, 0x85, 0x9F, 0xE9, 0x20AC, 0x1F600]
        for _ in 0..<2_000 {
            // Mostly short; one in ten 100 to 299 scalars (~1.6 bytes each: over 256 bytes or not).
            let length = rng.next(below: 10) == 0 ? 100 + rng.next(below: 200) : 1 + rng.next(below: 12)
            let scalars = (0..<length).map { _ in Unicode.Scalar(pool[rng.next(below: pool.count)])! }
            let value = String(String.UnicodeScalarView(scalars))
            let expected: String?
            if value.utf8.count > MeteringLimits.maxIDBytes {
                expected = "FIELD_TOO_LONG"
            } else if scalars.contains(where: Self.invisible) || scalars.first!.properties.isWhitespace
                        || scalars.last!.properties.isWhitespace {
                expected = "INVALID_FIELD"
            } else {
                expected = nil
            }
            #expect(Self.reason(value) == expected, "\(scalars.map(\.value))")
            reasons[expected, default: 0] += 1
        }
    }

    /// Ids that would print like another id are refused.
    @Test func idsThatPrintLikeAnotherAreRefused() {
        for spoof in ["demo\u{200B}", "de\u{200D}mo", "demo\u{202E}", "\u{FEFF}demo", "demo\u{2028}", "demo\u{85}",
                      "demo ", " demo", "   ", "demo\u{3000}", "\u{A0}demo", "demo\u{E000}"] {
            #expect(Self.reason(spoof) == "INVALID_FIELD", "\(spoof.unicodeScalars.map(\.value))")
        }
        for fine in ["demo", "my account", "caf\u{E9}", "\u{6771}\u{4EAC}", "a-b_c.d:e/f", "\u{1F600}"] {
            #expect(Self.reason(fine) == nil, "\(fine)")
        }
    }

    @Test func freeTextsRefuseControlsAndDirectionOverridesButKeepJoiners() {
        for bad in ["a\nb", "a\u{85}b", "a\u{202E}b", "a\u{2066}b", "a\u{2029}b", "a\u{1B}[2Kb"] {
            #expect(bad.unicodeScalars.contains(where: isDisallowedInText), "\(bad.unicodeScalars.map(\.value))")
        }
        for fine in ["Acme GmbH & Co. KG", "\u{1F469}\u{200D}\u{1F4BB}", "\u{645}\u{200C}\u{6CC}", "caf\u{E9}"] {
            #expect(!fine.unicodeScalars.contains(where: isDisallowedInText), "\(fine)")
        }
        #expect(printable("ok\n9999 forged\u{1B}[2K") == "ok\\u{a}9999 forged\\u{1b}[2K")
        #expect(printable("plain") == "plain")
    }

    @Test func refusalsNameTheField() {
        do {
            try requireID("", "line_items[3].llm.model")
            Issue.record("an empty id was accepted")
        } catch {
            #expect(error.errorInfo?.reason == "MISSING_FIELD")
            #expect(error.message.contains("line_items[3].llm.model"))
        }
        #expect(throws: Never.self) { try requireID("", "workspace_id", required: false) }
        #expect(Self.reason(String(repeating: "é", count: 129)) == "FIELD_TOO_LONG")
        #expect(Self.reason(String(repeating: "é", count: 128)) == nil)
    }
}
