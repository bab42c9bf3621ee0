/// The PDF tokens the writer emits (PDF 1.4 §3.2): numbers and strings.
enum PDFSyntax {
    /// `value` as a PDF real with at most two decimals. PDF has no exponent
    /// notation, so Swift's own description ("1e-05") cannot be used.
    static func number(_ value: Double) -> String {
        precondition(value.isFinite, "non-finite coordinate")
        let hundredths = Int((value * 100).rounded())
        let sign = hundredths < 0 ? "-" : ""
        let whole = abs(hundredths) / 100
        let fraction = abs(hundredths) % 100
        if fraction == 0 { return "\(sign)\(whole)" }
        if fraction % 10 == 0 { return "\(sign)\(whole).\(fraction / 10)" }
        return "\(sign)\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    /// `bytes` as a literal string `( … )`. Parentheses and backslashes are
    /// escaped; bytes outside printable ASCII are written as octal `\ddd`, so the
    /// content stream stays plain ASCII whatever the text.
    static func literalString(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x28]  // (
        out.reserveCapacity(bytes.count + 2)
        for byte in bytes {
            switch byte {
            case 0x28, 0x29, 0x5C:  // ( ) \
                out += [0x5C, byte]
            case 0x20...0x7E:
                out.append(byte)
            default:
                out += [0x5C, 0x30 + (byte >> 6), 0x30 + ((byte >> 3) & 7), 0x30 + (byte & 7)]
            }
        }
        out.append(0x29)  // )
        return out
    }

    /// `text` as a hex string in UTF-16BE with a byte-order mark: the encoding
    /// for text outside content streams (document information), any script.
    static func textString(_ text: String) -> String {
        let digits = Array("0123456789ABCDEF")
        var hex = "<FEFF"
        for unit in text.utf16 {
            for shift in [12, 8, 4, 0] {
                hex.append(digits[Int(unit >> UInt16(shift)) & 0xF])
            }
        }
        return hex + ">"
    }
}
