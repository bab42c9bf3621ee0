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

/// What makes a text no id, past its length and its control bytes: the
/// rules of a request's ids (`requireID`) and a user token's `sub` and
/// `account_id`, written once.
public enum IDTextProblem: Sendable, Equatable {
    /// Not Unicode NFC: texts whose bytes differ would compare equal.
    case notNFC
    /// A character that prints as nothing, or moves text (`isInvisibleInID`).
    case invisible
    /// A space at either end ("demo " looks like "demo").
    case edgeSpace
}

extension String {
    /// The first rule this text breaks as an id (checked in this order), or nil.
    public var idTextProblem: IDTextProblem? {
        if !isNFC { return .notNFC }
        let scalars = unicodeScalars
        if scalars.contains(where: isInvisibleInID) { return .invisible }
        if let first = scalars.first, let last = scalars.last, first.properties.isWhitespace || last.properties.isWhitespace {
            return .edgeSpace
        }
        return nil
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
