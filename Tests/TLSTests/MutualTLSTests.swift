import TLS
import Testing

@Test func clientWithoutCertificateIsRejected() throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(
        server: try fixtures.serverContext(requireClientCertificates: true), client: try fixtures.clientContext())
    pair.pump()

    #expect(pair.server.error?.kind == .handshake)
    #expect(pair.server.error?.description.contains("peer did not return a certificate") == true)
    #expect(pair.client.error != nil)  // TLS 1.3: the client learns from the alert after its Finished
    #expect(pair.server.plaintext.isEmpty)
}

@Test func clientWithCertificateFromTheCAIsAccepted() throws {
    let fixtures = try fixtures()
    let client = try fixtures.clientContext { $0.certificate = fixtures.client }
    var pair = try EnginePair(server: try fixtures.serverContext(requireClientCertificates: true), client: client)
    try pair.client.engine.writePlaintext(Array("hello".utf8))
    pair.pump()

    #expect(pair.isEstablished)
    #expect(pair.server.engine.peerCertificateSubject == "O=Example,CN=billing-client")
    #expect(pair.server.plaintext == Array("hello".utf8))
}

@Test func clientWithCertificateFromAnotherIssuerIsRejected() throws {
    let fixtures = try fixtures()
    // The self-signed server certificate is not signed by the client CA.
    let client = try fixtures.clientContext { $0.certificate = fixtures.server }
    var pair = try EnginePair(server: try fixtures.serverContext(requireClientCertificates: true), client: client)
    pair.pump()

    #expect(pair.server.error?.kind == .handshake)
    #expect(pair.server.error?.description.contains("certificate verification") == true)
}
