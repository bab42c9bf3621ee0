import Foundation

extension String {
    /// Whether the text is in Unicode NFC, the composed form (ASCII always
    /// is). Canonically equivalent texts compare equal in Swift but differ
    /// in bytes, hashes and SQLite: ids are taken in NFC only (`requireID`),
    /// and `billing verify` lists stored ones that are not.
    public var isNFC: Bool {
        utf8.allSatisfy { $0 < 0x80 } || precomposedStringWithCanonicalMapping.utf8.elementsEqual(utf8)
    }
}

/// A character an id may not hold: it prints as nothing (or moves text).
/// (Request ids, `requireID`; a user token's `sub` and `account_id`.)
public func isInvisibleInID(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.properties.generalCategory {
    case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: true
    default: false
    }
}
