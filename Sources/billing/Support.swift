import ArgumentParser
import BillingAuth
import BillingCore
import BillingService
import BillingSQLite
import Dispatch
import Foundation
import GRPC
import InvoicePDF

enum SynchronousOption: String, ExpressibleByArgument, CaseIterable {
    case full, normal

    var mode: SynchronousMode { self == .full ? .full : .normal }
}

/// Reads and validates the price catalog, naming the file in errors.
func loadCatalog(_ path: String) throws -> PriceCatalog {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read the price catalog \(path) (set --catalog)")
    }
    do {
        return try PriceCatalog(json: [UInt8](data))
    } catch {
        throw ValidationError("price catalog \(path): \(error)")
    }
}

func loadPlans(_ path: String) throws -> PlanCatalog {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read the plans file \(path) (set --plans)")
    }
    do {
        return try PlanCatalog(json: [UInt8](data))
    } catch {
        throw ValidationError("plans file \(path): \(error)")
    }
}

func loadSeller(_ path: String) throws -> InvoiceDocument.Party {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read the seller file \(path) (set --seller)")
    }
    do {
        return try PaymentsService.seller(json: [UInt8](data))
    } catch {
        throw ValidationError("seller file \(path): \(error)")
    }
}

/// Runs async work from synchronous command code (start-up and shutdown only).
func blockingAwait<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    nonisolated(unsafe) var result: Result<T, any Error>!
    let done = DispatchSemaphore(value: 0)
    Task {
        do { result = .success(try await work()) } catch { result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try result.get()
}

import TLS

enum OpenSSLCryptoHex {
    /// `bytes` random bytes from OpenSSL, as lower-case hex.
    static func random(bytes: Int) -> String {
        OpenSSLCrypto.randomBytes(count: bytes).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

/// The canonical name of a grpc-status code ("NOT_FOUND"), "NO_STATUS" for none (-1) or an unknown one.
func statusName(_ code: Int) -> String {
    GRPCStatus.Code(rawValue: code)?.name ?? "NO_STATUS"
}

/// A command's unknown options and arguments, refused as ArgumentParser
/// would — but validated before the command's own `validate` and its file
/// checks (a mistyped --catalog or --db was reported as the default file
/// missing, ArgumentParser's own error coming after).
struct UnknownOptions: ParsableArguments {
    @Argument(parsing: .allUnrecognized, help: .hidden)
    var values: [String] = []

    func validate() throws {
        guard let first = values.first else { return }
        // A key or token given where an argument goes is refused unshown
        // (session 30, an admin review: `billing call METHOD "$KEY"` echoed
        // the secret, as `keys revoke` did before session 26).
        guard !values.contains(where: looksSecret) else {  // (`Bearer bk_…` unquoted: the key is the second)
            throw ValidationError("unexpected argument (not shown: it holds an API key or a user token; a command that takes one has --key or $BILLING_KEY)")
        }
        throw ValidationError(first.hasPrefix("-") ? "Unknown option '\(first)'" : "Unexpected argument '\(first)'")
    }
}

/// A bearer token as `--key` or `$BILLING_KEY` gave it, refused (exit 64)
/// when it holds whitespace or a control character — a key pasted with a
/// space, or read from a CRLF file: no HTTP/2 header value may carry it, and
/// a call would end with no status at all (session 30). Never shown.
func requireHeaderSafeToken(_ token: String, fromOption: Bool) throws {
    guard token.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) else { return }
    let source = fromOption ? "--key" : "$BILLING_KEY"
    FileHandle.standardError.write(Data("Error: the token in \(source) holds whitespace or a control character (a trailing newline or CR from a file?); a key or JWT has none\n".utf8))
    throw ExitCode(64)
}

/// The TLS options of the commands that call a server (`call`, `load`).
struct ClientTLSOptions: ParsableArguments {
    @Option(help: "Use TLS, trusting this CA (PEM) for the server certificate.")
    var tlsCa: String?

    @Option(help: "Client certificate chain (PEM), for a server that asks for one (serve --tls-client-ca); with --tls-key and --tls-ca.")
    var tlsCert: String?

    @Option(help: "The client certificate's private key (PEM, not encrypted).")
    var tlsKey: String?

    func validate() throws {
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if tlsCert != nil && tlsCa == nil { throw ValidationError("--tls-cert needs --tls-ca: a client certificate is sent over TLS") }
    }

    /// The client's TLS context for `host`, nil without --tls-ca (h2c).
    func context(serverName host: String) throws -> TLSContext? {
        try tlsCa.map { ca in
            var configuration = TLSClientConfiguration(serverVerification: .trustCAFile(ca), serverName: host)
            if let tlsCert, let tlsKey {
                configuration.certificate = TLSCertificateFiles(chainFile: tlsCert, privateKeyFile: tlsKey)
            }
            return try TLSContext(client: configuration)
        }
    }
}
