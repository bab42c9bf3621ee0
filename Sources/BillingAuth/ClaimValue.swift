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
    /// depth limit, and an object that names a member twice (RFC 7519 §4:
    /// refuse, or take the last; the decoder kept the first, so a token
    /// `{"account_id":"a","account_id":"b"}` read as "a" here and as "b" in
    /// most other parsers — a gateway or an audit tool reading the same
    /// token would see another account or role; session 29).
    static func object(_ bytes: [UInt8]) -> [String: ClaimValue]? {
        guard let object = try? JSONDecoder().decode([String: ClaimValue].self, from: Data(bytes)),
              topLevelMembers(bytes) == object.count else { return nil }
        return object
    }

    /// How many members the top-level object of `bytes` (valid JSON) has:
    /// the commas at its depth, outside strings, plus one unless it is empty.
    /// Names that differ only in their escapes ("a" and "\u0061") decode to
    /// one key, so a count above the decoded dictionary's is a duplicate.
    static func topLevelMembers(_ bytes: [UInt8]) -> Int {
        var depth = 0, commas = 0, inString = false, escaped = false, empty = true
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                if depth == 1 { empty = false }
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            case UInt8(ascii: ","): if depth == 1 { commas += 1 }
            default: break
            }
        }
        return empty ? 0 : commas + 1
    }
}
