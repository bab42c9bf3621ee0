/// WinAnsiEncoding (PDF 1.4 Appendix D), the single-byte encoding the Helvetica
/// fonts are declared with. Text is measured, cut and drawn as these bytes.
enum WinAnsi {
    static let space: UInt8 = 0x20
    static let questionMark: UInt8 = 0x3F
    static let ellipsis: UInt8 = 0x85

    /// One byte per character. Whitespace of any kind (tabs, line breaks, no-break
    /// spaces) becomes a space; what the encoding lacks (other control characters,
    /// CJK, emoji) becomes `?`, so no input can break a content stream.
    static func encode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for character in text {
            bytes.append(byte(for: character))
        }
        return bytes
    }

    static func byte(for character: Character) -> UInt8 {
        if let ascii = character.asciiValue {  // "\r\n" is one Character, ASCII 0x0A
            return (0x20...0x7E).contains(ascii) ? ascii : (character.isWhitespace ? space : questionMark)
        }
        if character.isWhitespace { return space }
        // Keyed by Character, whose equality is canonical equivalence: a decomposed
        // "e\u{301}" finds the precomposed "é".
        return nonASCII[character] ?? questionMark
    }

    /// Latin-1 above the no-break space, the Windows-1252 typographic block at
    /// 0x80–0x9F, and a few look-alikes folded onto them.
    private static let nonASCII: [Character: UInt8] = {
        var table: [Character: UInt8] = [:]
        for code in UInt8(0xA1)...UInt8(0xFF) {
            table[Character(Unicode.Scalar(code))] = code
        }
        let windows1252: [(UInt32, UInt8)] = [
            (0x20AC, 0x80), (0x201A, 0x82), (0x0192, 0x83), (0x201E, 0x84), (0x2026, 0x85),
            (0x2020, 0x86), (0x2021, 0x87), (0x02C6, 0x88), (0x2030, 0x89), (0x0160, 0x8A),
            (0x2039, 0x8B), (0x0152, 0x8C), (0x017D, 0x8E), (0x2018, 0x91), (0x2019, 0x92),
            (0x201C, 0x93), (0x201D, 0x94), (0x2022, 0x95), (0x2013, 0x96), (0x2014, 0x97),
            (0x02DC, 0x98), (0x2122, 0x99), (0x0161, 0x9A), (0x203A, 0x9B), (0x0153, 0x9C),
            (0x017E, 0x9E), (0x0178, 0x9F),
            // Hyphen, non-breaking hyphen and minus sign print as the hyphen.
            (0x2010, 0x2D), (0x2011, 0x2D), (0x2212, 0x2D),
        ]
        for (scalar, code) in windows1252 {
            table[Character(Unicode.Scalar(scalar)!)] = code
        }
        return table
    }()
}
