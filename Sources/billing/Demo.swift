import BillingAuth
import BillingLedger
import BillingService
import Foundation
import Server

/// What a fresh database gets so the Quick start works: the demo account,
/// one service key with every scope, and an Owner token for the account.
struct DemoCredentials {
    let serviceKey: String
    let ownerToken: String

    static func create(ledger: Ledger, jwtSecret: [UInt8]?, issuer: String, audience: String) throws -> DemoCredentials {
        let material = ApiKeyMaterial.generate()
        try blockingAwait { try await DemoProvisioning.provision(ledger, key: material) }
        var token = ""
        if let jwtSecret {
            let now = Int64(Date().timeIntervalSince1970)
            let claims = UserClaims(userID: "demo-owner", accountID: "demo", role: .owner, expiresAt: now + 30 * 86_400)
            token = JWTSigner.sign(claims: claims, issuedAt: now, expiresAt: now + 30 * 86_400,
                                   issuer: issuer, audience: audience, secret: jwtSecret)
        }
        return DemoCredentials(serviceKey: material.token, ownerToken: token)
    }

    /// Writes the credentials as JSON (mode 0600) for scripts and tests.
    func write(to path: String) throws {
        let json = try JSONSerialization.data(withJSONObject: ["service_key": serviceKey, "owner_token": ownerToken],
                                              options: [.sortedKeys])
        try writePrivateFile(path, [UInt8](json))
    }

    /// How the demo's call reaches a TLS server: nil for h2c.
    enum TLSHint {
        case serverOnly
        case clientCertificate  // serve --tls-client-ca

        /// The call's options: file names to replace, written so that a
        /// paste runs (no `<…>`, which a shell takes for redirections).
        var options: String {
            switch self {
            case .serverOnly: " --tls-ca CA.pem"
            case .clientCertificate: " --tls-ca CA.pem --tls-cert CLIENT.pem --tls-key CLIENT.key"
            }
        }

        var note: String {
            switch self {
            case .serverOnly: "\n(TLS: CA.pem is the CA that signed --tls-cert, or that certificate itself when it is self-signed.)"
            case .clientCertificate: "\n(TLS: CA.pem is the CA that signed --tls-cert, or that certificate itself when it is self-signed; CLIENT.pem and CLIENT.key a client certificate signed by a CA of --tls-client-ca, and its key.)"
            }
        }
    }

    func printHelp(_ address: SocketAddress, tls: TLSHint? = nil) {
        print("""
            Demo account created: account_id "demo" (Pro trial) with $100.00 of promotional credits.
            Service key (all scopes; shown once, stored only as a hash):
              \(serviceKey)
            Owner token for account "demo" (valid 30 days):
              \(ownerToken.isEmpty ? "(none: no JWT secret configured)" : ownerToken)
            Try, from the repository (no other tool needed):
              BILLING_KEY='\(serviceKey)' "$(swift build -c release --show-bin-path)/billing" call \\
                billing.v1.Metering/Debit --target \(address)\(tls?.options ?? "") \\
                -d '{"account_id":"demo","workspace_id":"w1","agent_id":"a1","run_id":"r1","idempotency_key":"k1",
                     "line_items":[{"llm":{"model":"gpt-4o","input_tokens":1000,"output_tokens":500}}]}'
            or grpcurl with the schema (README, "Calling it").\(tls?.note ?? "")
            (start with --no-demo to skip this on a fresh database)
            """)
        fflush(nil)  // every stream: the demo lines must reach a redirected stdout at once
    }
}

/// The platform's JWT secret: from --jwt-secret-file, or (demo mode only)
/// generated once into a 0600 file beside the database.
func loadJWTSecret(path: String, createIfMissing: Bool) throws -> [UInt8]? {
    if let data = FileManager.default.contents(atPath: path) {
        // Text (a hex or base64 secret, perhaps written with a newline) is
        // trimmed; anything else is a binary secret, used byte for byte
        // (decoding it as UTF-8 would replace its invalid bytes, and
        // different secrets could verify the same tokens).
        let bytes = [UInt8](data)
        let secret = String(validating: bytes, as: UTF8.self).map { Array($0.trimmingCharacters(in: .whitespacesAndNewlines).utf8) } ?? bytes
        guard secret.count >= 32 else {
            throw CLIError("the JWT secret in \(path) is shorter than 32 bytes")
        }
        return secret
    }
    guard createIfMissing else { return nil }
    let secret = OpenSSLCryptoHex.random(bytes: 32)
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
    try writePrivateFile(path, Array(secret.utf8))
    return Array(secret.utf8)
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes `contents` to `path` readable by its owner only, from the first
/// byte: a temporary file beside it is created with mode 0600 (never wider,
/// whatever the umask), written, synced, and renamed over `path`.
/// (FileManager.createFile creates the file with the default mode and
/// narrows it only after the rename: another local user could open it first.)
func writePrivateFile(_ path: String, _ contents: [UInt8]) throws {
    let temporary = path + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw CLIError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
    var written = 0
    while written < contents.count {
        let count = contents[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            unlink(temporary)
            throw CLIError("cannot write \(temporary): \(reason)")
        }
        written += count
    }
    let synced = fsync(fd) == 0
    close(fd)
    guard synced, rename(temporary, path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw CLIError("cannot write \(path): \(reason)")
    }
}
