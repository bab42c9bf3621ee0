@testable import TLS
import Testing

@Test func handshakeNegotiatesH2OverTLS13() throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(server: try fixtures.serverContext(), client: try fixtures.clientContext())
    #expect(pair.server.engine.negotiatedProtocolVersion == nil)
    pair.pump()

    #expect(pair.isEstablished)
    #expect(pair.server.state == .established)
    #expect(pair.client.state == .established)
    #expect(pair.server.engine.negotiatedALPN == "h2")
    #expect(pair.client.engine.negotiatedALPN == "h2")
    #expect(pair.server.engine.negotiatedProtocolVersion == "TLSv1.3")
    #expect(pair.client.engine.negotiatedProtocolVersion == "TLSv1.3")
    #expect(pair.client.engine.peerCertificateSubject == "CN=localhost")
    #expect(pair.server.engine.peerCertificateSubject == nil)  // no client certificate asked for
}

@Test(arguments: [1, 2, 3] as [UInt64])
func handshakeSurvivesAnySplitOfTheBytes(seed: UInt64) throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(server: try fixtures.serverContext(), client: try fixtures.clientContext(), seed: seed)
    pair.maxPiece = 7  // a few bytes at a time: every record and header gets split
    pair.pump()
    #expect(pair.isEstablished, "seed \(seed)")
    #expect(pair.server.engine.negotiatedALPN == "h2", "seed \(seed)")
}

@Test func clientLimitedToTLS12StillConnects() throws {
    let fixtures = try fixtures()
    let client = try fixtures.clientContext { $0.maximumVersion = .tls1_2 }
    var pair = try EnginePair(server: try fixtures.serverContext(), client: client)
    pair.pump()

    #expect(pair.isEstablished)
    #expect(pair.server.engine.negotiatedProtocolVersion == "TLSv1.2")
    #expect(pair.client.engine.negotiatedProtocolVersion == "TLSv1.2")
    #expect(pair.server.engine.negotiatedALPN == "h2")
}

@Test func clientLimitedToTLS11FailsBeforeSending() throws {
    let fixtures = try fixtures()
    let client = try fixtures.clientContext {
        $0.minimumVersion = .tls1_1
        $0.maximumVersion = .tls1_1
    }
    // No TLS 1.1 cipher is in our list (nor allowed at security level 2),
    // so OpenSSL cannot even build the ClientHello.
    let error = try #require(throws: TLSError.self) { try TLSEngine(context: client) }
    #expect(error.kind == .handshake)
    #expect(error.description.contains("no ciphers available"))
}

@Test func serverRefusesATLS11ClientHello() throws {
    let fixtures = try fixtures()
    let server = try TLSEngine(context: try fixtures.serverContext())
    server.receiveCiphertext(tls11ClientHello())
    var plaintext: [UInt8] = []
    let error = try #require(throws: TLSError.self) { try server.readPlaintext(into: &plaintext) }
    #expect(error.kind == .handshake)
    #expect(error.description.contains("unsupported protocol"))

    var alert: [UInt8] = []
    server.drainCiphertext(into: &alert)
    #expect(alert.suffix(2) == [2, 70])  // fatal protocol_version (RFC 5246 §7.2)
}

/// What an old TLS 1.1 client sends: version 3.2, no supported_versions
/// extension, CBC suites, ALPN "h2" (so only the version is wrong).
func tls11ClientHello() -> [UInt8] {
    let alpn: [UInt8] = [0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, UInt8(ascii: "h"), UInt8(ascii: "2")]
    var body: [UInt8] = [0x03, 0x02] + [UInt8](repeating: 0x2A, count: 32)  // version, random
    body += [0x00]  // no session ID
    body += [0x00, 0x04, 0xC0, 0x13, 0xC0, 0x09]  // ECDHE-RSA/ECDSA-AES128-SHA
    body += [0x01, 0x00]  // null compression only
    body += [0x00, UInt8(alpn.count)] + alpn
    let handshake: [UInt8] = [0x01, 0x00, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    return [0x16, 0x03, 0x01, UInt8(handshake.count >> 8), UInt8(handshake.count & 0xFF)] + handshake
}

@Test func clientChecksTheServerName() throws {
    let fixtures = try fixtures()
    // An IPv6 address as a target spells it, bracketed, too (`billing call
    // --target [::1]:P --tls-ca`: the brackets were checked as a name).
    for name in ["localhost", "127.0.0.1", "::1", "[::1]"] {
        var pair = try EnginePair(
            server: try fixtures.serverContext(), client: try fixtures.clientContext { $0.serverName = name })
        pair.pump()
        #expect(pair.isEstablished, "\(name)")
    }

    var wrong = try EnginePair(
        server: try fixtures.serverContext(), client: try fixtures.clientContext { $0.serverName = "billing.example" })
    wrong.pump()
    #expect(wrong.client.error?.kind == .handshake)
    #expect(wrong.client.error?.description.contains("hostname mismatch") == true)
    #expect(wrong.server.error?.kind == .handshake)  // told by the client's alert
}

@Test func clientRefusesAnUntrustedServer() throws {
    let fixtures = try fixtures()
    // Trusts only the client CA, which did not sign the server certificate.
    let client = try fixtures.clientContext { $0.serverVerification = .trustCAFile(fixtures.clientCA) }
    var pair = try EnginePair(server: try fixtures.serverContext(), client: client)
    pair.pump()
    #expect(pair.client.error?.kind == .handshake)
    #expect(pair.client.error?.description.contains("certificate verify failed") == true)
}

@Test func noVerificationAcceptsAnyServer() throws {
    let fixtures = try fixtures()
    let client = try TLSContext(client: TLSClientConfiguration(serverVerification: .noVerification, serverName: "anything"))
    var pair = try EnginePair(server: try fixtures.serverContext(), client: client)
    pair.pump()
    #expect(pair.isEstablished)
}
