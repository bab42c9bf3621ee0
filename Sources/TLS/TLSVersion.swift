internal import COpenSSL

/// A TLS protocol version for a context's minimum or maximum.
public struct TLSVersion: Sendable, Hashable, CustomStringConvertible {
    let rawValue: Int32

    /// TLS 1.2 (RFC 5246): the oldest version we accept, still needed by
    /// some gRPC clients and load balancers.
    public static let tls1_2 = TLSVersion(rawValue: TLS1_2_VERSION)
    /// TLS 1.3 (RFC 8446): preferred; one round trip, no legacy ciphers.
    public static let tls1_3 = TLSVersion(rawValue: TLS1_3_VERSION)
    /// TLS 1.1: never a valid setting for us; here only so tests can check
    /// that a server refuses it.
    static let tls1_1 = TLSVersion(rawValue: TLS1_1_VERSION)

    public var description: String {
        switch rawValue {
        case TLS1_3_VERSION: "TLSv1.3"
        case TLS1_2_VERSION: "TLSv1.2"
        case TLS1_1_VERSION: "TLSv1.1"
        default: "TLS(0x\(String(rawValue, radix: 16)))"
        }
    }
}
