#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif

/// One member of a JWT header or claims object, reduced to the shapes a
/// claim may take. Anything else (fractions, booleans, null, objects, mixed
/// arrays, numbers beyond Int64) is `.other` and refused by whoever reads it.
enum ClaimValue: Decodable, Sendable {
    case string(String)
    /// A JSON number with an integral value that fits Int64 (1, 1.0 and 1e0
    /// alike: JSON gives a number's value, not its spelling).
    case integer(Int64)
    case strings([String])
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode([String].self) {
            self = .strings(value)
        } else {
            self = .other
        }
    }

    /// Parses `bytes` as one JSON object. Nil for anything else: invalid
    /// UTF-8 or JSON, another top-level type, nesting beyond the decoder's
    /// depth limit. Of duplicate members the first is kept; the signature
    /// covers the bytes, so only the signer could send duplicates.
    static func object(_ bytes: [UInt8]) -> [String: ClaimValue]? {
        try? JSONDecoder().decode([String: ClaimValue].self, from: Data(bytes))
    }
}
