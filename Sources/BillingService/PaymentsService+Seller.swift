import Foundation
public import InvoicePDF

extension PaymentsService {
    /// The seller printed on invoices, from a JSON file
    /// (`{"name": "...", "lines": ["...", ...], "comment": "..."}`; other keys
    /// refused, so a misspelt one cannot silently drop a line): no control
    /// characters, a name of 1 to 200 bytes not all blank, at most 8 lines
    /// of at most 200 bytes — and all of it must print whole in the
    /// invoice's seller column (the font's characters, 4 wrapped lines an
    /// entry, 12 in all: `InvoiceDocument.Party.overflow`), else a
    /// seller's address or e-mail was cut or printed as "?".
    public static func seller(json: [UInt8]) throws(SellerFileError) -> InvoiceDocument.Party {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(json))) as? [String: Any] else {
            throw SellerFileError("the seller file is not a JSON object")
        }
        if let unknown = Set(object.keys).subtracting(["name", "lines", "comment"]).sorted().first {
            throw SellerFileError("unknown key \"\(unknown)\" in the seller file (name, lines, comment)")
        }
        guard let name = object["name"] as? String, (1...200).contains(name.utf8.count), printable(name),
              name.contains(where: { !$0.isWhitespace }) else {
            throw SellerFileError("name must be a string of 1 to 200 bytes, not blank, without control characters")
        }
        let lines = object["lines"] ?? [String]()
        guard let lines = lines as? [String], lines.count <= 8,
              lines.allSatisfy({ $0.utf8.count <= 200 && printable($0) }) else {
            throw SellerFileError("lines must be at most 8 strings of at most 200 bytes without control characters")
        }
        let party = InvoiceDocument.Party(name: name, lines: lines)
        if let overflow = party.overflow { throw SellerFileError("it would not print whole on invoices: \(overflow)") }
        return party
    }

    private static func printable(_ text: String) -> Bool {
        !text.unicodeScalars.contains { $0.properties.generalCategory == .control || (0x2028...0x2029).contains($0.value) }
    }
}

/// Why a seller file was refused.
public struct SellerFileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
