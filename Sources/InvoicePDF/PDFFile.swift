/// A PDF 1.4 file under construction (PDF 1.4 §3.4): header, numbered objects,
/// then the cross-reference table and trailer that point back at them.
/// Objects must be added in number order starting at 1, so the table has no gaps.
struct PDFFile {
    private(set) var bytes: [UInt8]
    /// Byte offset of object n at index n - 1.
    private var offsets: [Int] = []

    init() {
        // The comment of four bytes above 0x7F tells transfer tools the file is binary.
        bytes = Array("%PDF-1.4\n%".utf8) + [0xE2, 0xE3, 0xCF, 0xD3, 0x0A]
    }

    /// Adds object `number` whose value is `body` (a dictionary, array, …).
    mutating func add(_ number: Int, _ body: String) {
        begin(number)
        bytes += "\(body)\nendobj\n".utf8
    }

    /// Adds object `number`, a stream holding `data` unfiltered.
    mutating func addStream(_ number: Int, _ data: [UInt8]) {
        begin(number)
        bytes += "<< /Length \(data.count) >>\nstream\n".utf8
        bytes += data
        bytes += "\nendstream\nendobj\n".utf8
    }

    /// The finished file: the cross-reference table, the trailer naming the
    /// catalog `root` and the information dictionary `info`, and `%%EOF`.
    consuming func finish(root: Int, info: Int) -> [UInt8] {
        precondition(root >= 1 && root <= offsets.count && info >= 1 && info <= offsets.count)
        let xref = bytes.count
        // Each entry is exactly 20 bytes: 10-digit offset, 5-digit generation, type, space, LF.
        bytes += "xref\n0 \(offsets.count + 1)\n0000000000 65535 f \n".utf8
        for offset in offsets {
            bytes += "\(Self.padded(offset, to: 10)) 00000 n \n".utf8
        }
        bytes += "trailer\n<< /Size \(offsets.count + 1) /Root \(root) 0 R /Info \(info) 0 R >>\n".utf8
        bytes += "startxref\n\(xref)\n%%EOF\n".utf8
        return bytes
    }

    private mutating func begin(_ number: Int) {
        precondition(number == offsets.count + 1, "object \(number) added out of order")
        offsets.append(bytes.count)
        bytes += "\(number) 0 obj\n".utf8
    }

    private static func padded(_ value: Int, to width: Int) -> String {
        let digits = String(value)
        precondition(digits.count <= width, "offset \(value) does not fit the xref table")
        return String(repeating: "0", count: width - digits.count) + digits
    }
}
