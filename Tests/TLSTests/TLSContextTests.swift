import Foundation
import TLS
import Testing

@Test func missingKeyFileIsNamedInTheError() throws {
    let fixtures = try fixtures()
    let files = TLSCertificateFiles(chainFile: fixtures.server.chainFile, privateKeyFile: "/nonexistent/server.key")
    let error = try #require(throws: TLSError.self) { try TLSContext(server: TLSServerConfiguration(certificate: files)) }
    #expect(error.kind == .configuration)
    #expect(error.message == "cannot load private key /nonexistent/server.key")
    #expect(error.description.contains("No such file or directory"))
}

@Test func missingChainFileIsNamedInTheError() throws {
    let fixtures = try fixtures()
    let files = TLSCertificateFiles(chainFile: "/nonexistent/server.pem", privateKeyFile: fixtures.server.privateKeyFile)
    let error = try #require(throws: TLSError.self) { try TLSContext(server: TLSServerConfiguration(certificate: files)) }
    #expect(error.message == "cannot load certificate chain /nonexistent/server.pem")
    #expect(error.description.contains("No such file or directory"))
}

@Test func keyOfAnotherCertificateIsRejected() throws {
    let fixtures = try fixtures()
    let files = TLSCertificateFiles(chainFile: fixtures.server.chainFile, privateKeyFile: fixtures.client.privateKeyFile)
    let error = try #require(throws: TLSError.self) { try TLSContext(server: TLSServerConfiguration(certificate: files)) }
    #expect(error.message == "cannot load private key \(fixtures.client.privateKeyFile)")
    #expect(error.description.contains("key values mismatch"))
}

@Test func certificateFileThatIsNotPEMIsRejected() throws {
    let fixtures = try fixtures()
    // A key file where the chain should be: no certificate in it.
    let files = TLSCertificateFiles(chainFile: fixtures.server.privateKeyFile, privateKeyFile: fixtures.server.privateKeyFile)
    let error = try #require(throws: TLSError.self) { try TLSContext(server: TLSServerConfiguration(certificate: files)) }
    #expect(error.message.hasPrefix("cannot load certificate chain"))
    #expect(!error.openSSLErrors.isEmpty)
}

@Test func missingClientCAFileIsNamedInTheError() throws {
    let fixtures = try fixtures()
    let configuration = TLSServerConfiguration(certificate: fixtures.server, clientCAFile: "/nonexistent/ca.pem")
    let error = try #require(throws: TLSError.self) { try TLSContext(server: configuration) }
    #expect(error.message == "cannot load client CA file /nonexistent/ca.pem")
}

/// An encrypted key is refused at once: OpenSSL's default passphrase
/// callback prompted "Enter PEM pass phrase:" on the terminal and waited.
@Test func anEncryptedKeyIsRefusedWithoutAPrompt() throws {
    let fixtures = try fixtures()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-encrypted-\(getpid())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let encrypted = directory + "/server.key"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["openssl", "pkey", "-in", fixtures.server.privateKeyFile, "-aes256", "-passout", "pass:secret",
                         "-out", encrypted]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    let files = TLSCertificateFiles(chainFile: fixtures.server.chainFile, privateKeyFile: encrypted)
    let error = try #require(throws: TLSError.self) { try TLSContext(server: TLSServerConfiguration(certificate: files)) }
    #expect(error.message == "cannot load private key \(encrypted)")
    #expect(!error.openSSLErrors.isEmpty)
    // OpenSSL's terminal UI was never reached (without a terminal it fails
    // with "UI routines::processing error"; with one it waits for a typist).
    #expect(!error.openSSLErrors.contains { $0.contains("UI routines") }, "\(error.openSSLErrors)")
}
