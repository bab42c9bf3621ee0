import Foundation
import TLS

/// Certificates made once per test run with the openssl CLI, in a fresh
/// temporary directory:
/// - server.pem/server.key: self-signed, CN=localhost, SAN localhost, 127.0.0.1 and ::1;
///   clients trust it directly.
/// - ca.pem/ca.key: the client CA that mTLS servers require.
/// - client.pem/client.key: CN=billing-client, O=Example, signed by that CA.
struct Fixtures: Sendable {
    let directory: String

    func path(_ name: String) -> String { directory + "/" + name }

    var server: TLSCertificateFiles {
        TLSCertificateFiles(chainFile: path("server.pem"), privateKeyFile: path("server.key"))
    }
    var client: TLSCertificateFiles {
        TLSCertificateFiles(chainFile: path("client.pem"), privateKeyFile: path("client.key"))
    }
    var clientCA: String { path("ca.pem") }

    static func make() throws -> Fixtures {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tls-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
        try openssl(["req", "-x509"] + p256 + [
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
            "-keyout", "server.key", "-out", "server.pem",
        ], in: directory)
        try openssl(["req", "-x509"] + p256 + [
            "-subj", "/CN=Test Client CA", "-keyout", "ca.key", "-out", "ca.pem",
        ], in: directory)
        try openssl(["req", "-x509"] + p256 + [
            "-subj", "/CN=billing-client/O=Example", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=clientAuth",
            "-keyout", "client.key", "-out", "client.pem",
        ], in: directory)
        return Fixtures(directory: directory)
    }

    private static func openssl(_ arguments: [String], in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError(
                command: "openssl " + arguments.joined(separator: " "),
                output: String(decoding: message, as: UTF8.self))
        }
    }

    struct FixtureError: Error {
        let command: String
        let output: String
    }

    // MARK: contexts used by most tests

    func serverContext(requireClientCertificates: Bool = false) throws -> TLSContext {
        try TLSContext(
            server: TLSServerConfiguration(
                certificate: server, clientCAFile: requireClientCertificates ? clientCA : nil))
    }

    /// Trusts the self-signed server certificate and checks the name "localhost".
    func clientConfiguration() -> TLSClientConfiguration {
        TLSClientConfiguration(serverVerification: .trustCAFile(path("server.pem")), serverName: "localhost")
    }

    func clientContext(_ change: (inout TLSClientConfiguration) -> Void = { _ in }) throws -> TLSContext {
        var configuration = clientConfiguration()
        change(&configuration)
        return try TLSContext(client: configuration)
    }
}

/// Made on first use, shared by all tests (they run in parallel).
let sharedFixtures = Result { try Fixtures.make() }

func fixtures() throws -> Fixtures { try sharedFixtures.get() }
