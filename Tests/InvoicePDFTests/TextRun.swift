@testable import InvoicePDF

/// A text-showing operation read back from a content stream as the writer emits
/// it: `BT /F1 9.5 Tf r g b rg x y Td (text) Tj ET` on one line.
struct TextRun {
    var font: Font
    var size: Double
    var x: Double
    var y: Double
    var text: [UInt8]

    var width: Double { font.width(of: text, size: size) }

    /// Whether the two runs' boxes (baseline to cap height, start to advance)
    /// intersect: text drawn over text.
    func overlaps(_ other: TextRun) -> Bool {
        let capHeight = 0.72
        let vertical = y < other.y + capHeight * other.size && other.y < y + capHeight * size
        let horizontal = x < other.x + other.width && other.x < x + width
        return vertical && horizontal && !text.isEmpty && !other.text.isEmpty
    }

    /// Every text run in `content`, in drawing order.
    static func all(in content: [UInt8]) -> [TextRun] {
        content.split(separator: 0x0A).compactMap { line in
            guard line.starts(with: Array("BT /".utf8)), let open = line.firstIndex(of: 0x28) else { return nil }
            let operands = String(decoding: line[..<open], as: UTF8.self).split(separator: " ")
            // BT /F1 size Tf r g b rg x y Td
            guard operands.count == 11, let size = Double(operands[2]), let x = Double(operands[8]),
                  let y = Double(operands[9]) else { return nil }
            let font: Font = operands[1] == "/F2" ? .helveticaBold : .helvetica
            return TextRun(font: font, size: size, x: x, y: y, text: unescaped(line[(open + 1)...]))
        }
    }

    /// The bytes of a literal string up to its closing parenthesis.
    private static func unescaped(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var text: [UInt8] = []
        var index = bytes.startIndex
        while index < bytes.endIndex, bytes[index] != 0x29 {
            if bytes[index] == 0x5C {
                let next = bytes[index + 1]
                if (0x30...0x37).contains(next) {
                    text.append(bytes[(index + 1)...(index + 3)].reduce(0) { $0 * 8 + ($1 - 0x30) })
                    index += 4
                } else {
                    text.append(next)
                    index += 2
                }
            } else {
                text.append(bytes[index])
                index += 1
            }
        }
        return text
    }
}
