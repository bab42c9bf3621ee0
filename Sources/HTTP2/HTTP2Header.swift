/// One HTTP/2 header field. Names are lower-case on the wire (HTTP/2 requires it).
public struct HTTP2Header: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == HTTP2Header {
    /// The first value of `name`, or nil.
    public func first(_ name: String) -> String? {
        for header in self where header.name == name { return header.value }
        return nil
    }
}
