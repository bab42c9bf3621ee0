/// Just enough of a PDF reader to check the writer's bookkeeping: the xref
/// table, the trailer, each object's text and each stream's extent. Every
/// inconsistency it meets is thrown as a message saying where.
struct ParsedPDF {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    struct Stream {
        var object: Int
        var declaredLength: Int
        /// Bytes from after `stream\n` to before `\nendstream`.
        var data: [UInt8]
    }

    let bytes: [UInt8]
    /// Offset of object n at index n (index 0, the free-list head, unused).
    let offsets: [Int]
    let trailer: String

    init(_ bytes: [UInt8]) throws {
        self.bytes = bytes
        guard bytes.starts(with: Array("%PDF-1.4\n%".utf8)), bytes.count > 15, bytes[10..<14].allSatisfy({ $0 >= 0x80 }),
              bytes[14] == 0x0A else {
            throw Malformed(description: "header is not %PDF-1.4 followed by a binary comment line")
        }
        guard bytes.reversed().starts(with: Array("%%EOF\n".utf8.reversed())) else {
            throw Malformed(description: "file does not end with %%EOF")
        }
        guard let startxrefRange = Self.lastRange(of: "startxref\n", in: bytes) else {
            throw Malformed(description: "no startxref")
        }
        let digits = bytes[startxrefRange.upperBound...].prefix { (0x30...0x39).contains($0) }
        guard let xref = Int(String(decoding: digits, as: UTF8.self)), xref < bytes.count,
              bytes[xref...].starts(with: Array("xref\n".utf8)) else {
            throw Malformed(description: "startxref does not point at the xref keyword")
        }
        let table = String(decoding: bytes[xref..<startxrefRange.lowerBound], as: UTF8.self)
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false)
        let subsection = lines[1].split(separator: " ")
        guard subsection.count == 2, subsection[0] == "0", let size = Int(subsection[1]), size >= 2 else {
            throw Malformed(description: "xref subsection header is \(lines[1])")
        }
        guard lines[2] == "0000000000 65535 f " else { throw Malformed(description: "bad free-list head \(lines[2])") }
        var offsets = [0]
        for number in 1..<size {
            let entry = lines[2 + number]
            guard entry.utf8.count == 19, entry.hasSuffix(" 00000 n "), let offset = Int(entry.prefix(10)) else {
                throw Malformed(description: "xref entry \(number) is '\(entry)' (not 20 bytes with LF)")
            }
            guard offset < bytes.count, bytes[offset...].starts(with: Array("\(number) 0 obj\n".utf8)) else {
                throw Malformed(description: "xref entry \(number) points at offset \(offset), not at '\(number) 0 obj'")
            }
            offsets.append(offset)
        }
        guard lines[2 + size] == "trailer" else { throw Malformed(description: "no trailer after the xref table") }
        self.offsets = offsets
        self.trailer = lines[(3 + size)...].joined(separator: "\n")
        guard trailer.contains("/Size \(size) ") else { throw Malformed(description: "trailer /Size is not \(size)") }
        let objectCount = Self.ranges(of: " 0 obj\n", in: bytes).count
        guard objectCount == size - 1 else {
            throw Malformed(description: "file has \(objectCount) objects but the xref lists \(size - 1)")
        }
    }

    var objectCount: Int { offsets.count - 1 }

    /// The text of object `number` from its `obj` line to `endobj`, stream data included.
    func object(_ number: Int) -> String {
        String(decoding: objectBytes(number), as: UTF8.self)
    }

    /// The stream of every object that has one, its /Length checked against the
    /// bytes before `\nendstream`.
    func streams() throws -> [Stream] {
        var streams: [Stream] = []
        for number in 1...objectCount {
            let object = objectBytes(number)
            guard let keyword = object.firstRange(of: Array(">>\nstream\n".utf8)) else { continue }
            let dictionary = String(decoding: object[..<keyword.lowerBound], as: UTF8.self)
            guard let lengthRange = dictionary.firstRange(of: "/Length "),
                  let length = Int(dictionary[lengthRange.upperBound...].prefix { $0.isNumber }) else {
                throw Malformed(description: "stream object \(number) has no direct /Length")
            }
            let start = keyword.upperBound
            guard let end = object[start...].firstRange(of: Array("\nendstream\nendobj".utf8))?.lowerBound else {
                throw Malformed(description: "stream object \(number) has no endstream")
            }
            guard end - start == length else {
                throw Malformed(description: "stream object \(number): /Length \(length), but \(end - start) bytes before endstream")
            }
            streams.append(Stream(object: number, declaredLength: length, data: Array(object[start..<end])))
        }
        return streams
    }

    /// Objects whose dictionary is a page (not the page tree).
    var pageObjects: [Int] {
        (1...objectCount).filter { object($0).contains("<< /Type /Page ") }
    }

    private func objectBytes(_ number: Int) -> ArraySlice<UInt8> {
        let start = offsets[number]
        let next = offsets.filter { $0 > start }.min() ?? bytes.count
        return bytes[start..<next]
    }

    private static func ranges(of needle: String, in bytes: [UInt8]) -> [Range<Int>] {
        bytes.ranges(of: Array(needle.utf8))
    }

    private static func lastRange(of needle: String, in bytes: [UInt8]) -> Range<Int>? {
        ranges(of: needle, in: bytes).last
    }
}
