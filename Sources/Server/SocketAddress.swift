import Glibc

/// A listen address: "127.0.0.1:50051", "[::1]:50051", "0.0.0.0:0".
public struct SocketAddress: Sendable, CustomStringConvertible {
    public let host: String
    public let port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the host is a numeric IPv4 or IPv6 address (the only kind a
    /// server binds: no name is looked up).
    public var isNumeric: Bool { numericHost != nil }

    /// The host's address bytes and whether it is IPv6; nil for a name.
    private var numericHost: (bytes: [UInt8], v6: Bool)? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return (withUnsafeBytes(of: &v4) { Array($0) }, false) }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        // An IPv4-mapped address (::ffff:a.b.c.d) binds as that IPv4 one.
        if bytes.prefix(10).allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return (Array(bytes.suffix(4)), false) }
        return (bytes, true)
    }

    /// Whether binding both would clash: the same port (not 0) on the same
    /// address, however it is spelled, or where one is a wildcard covering
    /// the other (0.0.0.0 the IPv4 addresses; :: every address, as Linux
    /// binds it dual-stack by default).
    public func bindsOverlap(with other: SocketAddress) -> Bool {
        guard port != 0, port == other.port, let a = numericHost, let b = other.numericHost else { return false }
        let wildcard = { (address: (bytes: [UInt8], v6: Bool)) in address.bytes.allSatisfy { $0 == 0 } }
        if (a.v6 && wildcard(a)) || (b.v6 && wildcard(b)) { return true }
        guard a.v6 == b.v6 else { return false }
        return wildcard(a) || wildcard(b) || a.bytes == b.bytes
    }

    /// Calls `body` with a sockaddr for this address; nil when the host is
    /// not a numeric IPv4 or IPv6 address.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t, Int32) throws -> R) throws -> R? {
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            return try withUnsafePointer(to: &v4) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in>.size), AF_INET)
                }
            }
        }
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            return try withUnsafePointer(to: &v6) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size), AF_INET6)
                }
            }
        }
        return nil
    }

    /// Describes a peer from accept().
    static func describe(_ storage: sockaddr_storage) -> String {
        var storage = storage
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { addr in
                    var a = addr.pointee.sin_addr
                    inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
                    return "\(cString(text)):\(UInt16(bigEndian: addr.pointee.sin_port))"
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { addr in
                    var a = addr.pointee.sin6_addr
                    inet_ntop(AF_INET6, &a, &text, socklen_t(text.count))
                    return "[\(cString(text))]:\(UInt16(bigEndian: addr.pointee.sin6_port))"
                }
            }
        default:
            return "unknown"
        }
    }
}

public struct SocketError: Error, CustomStringConvertible {
    public let operation: String
    public let errno: Int32
    public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}

private func cString(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
