/// A received header block kept as raw bytes: names and values are turned
/// into Strings only when asked for, so the per-request cost is two byte
/// copies per field instead of two String allocations.
public struct HTTP2HeaderBlock: Sendable, Equatable {
    @usableFromInline
    struct Field: Sendable, Equatable {
        @usableFromInline let nameStart: Int
        @usableFromInline let nameLength: Int
        @usableFromInline let valueLength: Int
        @usableFromInline var valueStart: Int { nameStart + nameLength }

        init(nameStart: Int, nameLength: Int, valueLength: Int) {
            self.nameStart = nameStart
            self.nameLength = nameLength
            self.valueLength = valueLength
        }
    }

    @usableFromInline private(set) var bytes: [UInt8] = []
    @usableFromInline private(set) var fields: [Field] = []
    /// Size as RFC 9113 §6.5.2 counts it: name + value + 32 per field.
    public private(set) var listSize = 0

    public init() {
        bytes.reserveCapacity(256)
        fields.reserveCapacity(8)
    }

    public init(_ headers: [HTTP2Header]) {
        self.init()
        for header in headers {
            let name = Array(header.name.utf8), value = Array(header.value.utf8)
            name.withUnsafeBufferPointer { n in value.withUnsafeBufferPointer { v in append(name: n, value: v) } }
        }
    }

    mutating func append(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        fields.append(Field(nameStart: bytes.count, nameLength: name.count, valueLength: value.count))
        bytes.append(contentsOf: name)
        bytes.append(contentsOf: value)
        listSize += name.count + value.count + 32
    }

    public var count: Int { fields.count }

    /// The first value of `name` (lower-case), or nil.
    public func value(_ name: String) -> String? {
        guard let index = index(of: name) else { return nil }
        return valueString(at: index)
    }

    /// Whether the first value of `name` starts with `prefix`.
    public func value(_ name: String, hasPrefix prefix: String) -> Bool {
        guard let index = index(of: name) else { return false }
        let field = fields[index]
        let prefixBytes = Array(prefix.utf8)
        guard field.valueLength >= prefixBytes.count else { return false }
        return bytes[field.valueStart..<field.valueStart + prefixBytes.count].elementsEqual(prefixBytes)
    }

    /// Calls `body` with each field's raw name and value, in order, without
    /// creating Strings (for the one pass a request's routing needs).
    /// Inlinable, so the caller's closure is specialised into the loop.
    @inlinable
    public func forEachField(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        bytes.withUnsafeBufferPointer { all in
            guard let base = all.baseAddress else { return }
            for field in fields {
                body(UnsafeBufferPointer(start: base + field.nameStart, count: field.nameLength),
                     UnsafeBufferPointer(start: base + field.valueStart, count: field.valueLength))
            }
        }
    }

    /// Every field, in order, as Strings.
    public var headers: [HTTP2Header] {
        fields.indices.map { HTTP2Header(nameString(at: $0), valueString(at: $0)) }
    }

    /// Fields whose name does not start with ':' (gRPC metadata).
    public var regularHeaders: [HTTP2Header] {
        fields.indices.compactMap { i in
            bytes[fields[i].nameStart] == UInt8(ascii: ":") ? nil : HTTP2Header(nameString(at: i), valueString(at: i))
        }
    }

    /// How many fields are named `name` (lower-case), without creating Strings.
    public func count(of name: String) -> Int {
        var count = 0
        forEachIndex(named: name) { _ in count += 1; return true }
        return count
    }

    private func index(of name: String) -> Int? {
        var found: Int?
        forEachIndex(named: name) { i in found = i; return false }
        return found
    }

    /// Calls `body` with the index of each field named `name` until it returns false.
    private func forEachIndex(named name: String, _ body: (Int) -> Bool) {
        var name = name
        name.withUTF8 { target in
            bytes.withUnsafeBufferPointer { all in
                for (i, field) in fields.enumerated() where field.nameLength == target.count
                    && memcmpEqual(all.baseAddress! + field.nameStart, target.baseAddress!, target.count) {
                    if !body(i) { return }
                }
            }
        }
    }

    private func nameString(at i: Int) -> String {
        let f = fields[i]
        return String(decoding: bytes[f.nameStart..<f.nameStart + f.nameLength], as: UTF8.self)
    }

    private func valueString(at i: Int) -> String {
        let f = fields[i]
        return String(decoding: bytes[f.valueStart..<f.valueStart + f.valueLength], as: UTF8.self)
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    for i in 0..<count where a[i] != b[i] { return false }
    return true
}
