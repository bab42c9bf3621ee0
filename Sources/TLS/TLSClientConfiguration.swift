/// What a client context needs (tests, the load generator).
public struct TLSClientConfiguration: Sendable, Hashable {
    public enum ServerVerification: Sendable, Hashable {
        /// The server's chain must verify against the CAs in this PEM file,
        /// and match `serverName` when one is set.
        case trustCAFile(String)
        /// Accept any server certificate. For tests and load generation
        /// against a server you control; never for real traffic.
        case noVerification
    }

    public var serverVerification: ServerVerification
    /// Sent as SNI (unless it is an IP address) and checked against the
    /// server certificate's names when verifying.
    public var serverName: String?
    /// `serverName` as OpenSSL takes it: an IPv6 address given bracketed, as
    /// in a target (`[::1]`), without its brackets (with them it is no
    /// address, and matched no certificate).
    var bareServerName: String? {
        guard let name = serverName, name.count > 2, name.hasPrefix("["), name.hasSuffix("]") else { return serverName }
        return String(name.dropFirst().dropLast())
    }
    /// A client certificate for servers that require one (mutual TLS).
    public var certificate: TLSCertificateFiles?
    /// Offered with ALPN, most preferred first; empty sends no ALPN extension.
    public var applicationProtocols: [String] = ["h2"]
    public var minimumVersion: TLSVersion = .tls1_2
    public var maximumVersion: TLSVersion = .tls1_3

    public init(
        serverVerification: ServerVerification, serverName: String? = nil,
        certificate: TLSCertificateFiles? = nil
    ) {
        self.serverVerification = serverVerification
        self.serverName = serverName
        self.certificate = certificate
    }
}
