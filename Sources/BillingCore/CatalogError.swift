/// Why a price catalog could not be loaded. Paths are dotted JSON paths,
/// e.g. "models.gpt-4o.input_micros_per_million_tokens".
public enum CatalogError: Error, Hashable, Sendable {
    /// Not JSON, or a value of the wrong type (a fraction where an integer
    /// rate belongs, a rate beyond Int64). The string says where and why.
    case malformed(String)
    case missingField(String)
    /// A field the format does not have: most likely a misspelling, which
    /// would otherwise silently drop a price.
    case unknownField(String)
    /// The version is not 1–64 characters of `A-Z a-z 0-9 . - _ + :`.
    case invalidVersion(String)
    case negativeRate(String)
    /// An empty model or integration name in the object at this path.
    case emptyName(String)
}

extension CatalogError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .malformed(let detail): "price catalog is malformed: \(detail)"
        case .missingField(let path): "price catalog is missing \(path)"
        case .unknownField(let path): "price catalog has an unknown field \(path)"
        case .invalidVersion(let version):
            "price catalog version \"\(version)\" must be 1-\(PriceCatalog.maxVersionLength) characters of A-Z a-z 0-9 . - _ + :"
        case .negativeRate(let path): "price catalog rate \(path) is negative"
        case .emptyName(let path): "price catalog has an empty name in \(path)"
        }
    }
}
