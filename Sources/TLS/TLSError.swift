/// A TLS failure. `message` says what we were doing (naming the file for
/// configuration errors); `openSSLErrors` is OpenSSL's error queue at that
/// moment, oldest first, e.g. "error:0A000086:SSL routines::certificate verify failed".
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Building a context failed: a file, a key, a setting.
        case configuration
        /// The handshake failed: bad bytes, no common version or cipher,
        /// no "h2", a certificate that does not verify.
        case handshake
        /// The connection failed after the handshake: a bad record or a fatal alert.
        case connection
        /// Writing after close_notify was sent or received, or after a failure.
        case closed
    }

    public let kind: Kind
    public let message: String
    public let openSSLErrors: [String]

    public init(kind: Kind, message: String, openSSLErrors: [String] = []) {
        self.kind = kind
        self.message = message
        self.openSSLErrors = openSSLErrors
    }

    public var description: String {
        openSSLErrors.isEmpty ? message : "\(message): \(openSSLErrors.joined(separator: "; "))"
    }
}
