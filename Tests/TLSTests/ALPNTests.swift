import TLS
import Testing

@Test(arguments: [["http/1.1"], ["h2c", "grpc-exp"]])
func clientNotOfferingH2IsRefused(offer: [String]) throws {
    let fixtures = try fixtures()
    let client = try fixtures.clientContext { $0.applicationProtocols = offer }
    var pair = try EnginePair(server: try fixtures.serverContext(), client: client)
    pair.pump()

    #expect(!pair.isEstablished)
    #expect(pair.server.error?.kind == .handshake)
    #expect(pair.client.error?.description.contains("no application protocol") == true)
}

@Test func clientSendingNoALPNIsRefused() throws {
    let fixtures = try fixtures()
    let client = try fixtures.clientContext { $0.applicationProtocols = [] }
    var pair = try EnginePair(server: try fixtures.serverContext(), client: client)
    pair.pump()

    #expect(!pair.isEstablished)
    #expect(pair.server.error?.kind == .handshake)
    #expect(pair.client.error?.description.contains("no application protocol") == true)
}

@Test func serverPicksH2AmongSeveralOffers() throws {
    let fixtures = try fixtures()
    let client = try fixtures.clientContext { $0.applicationProtocols = ["http/1.1", "h2", "h3"] }
    var pair = try EnginePair(server: try fixtures.serverContext(), client: client)
    pair.pump()
    #expect(pair.isEstablished)
    #expect(pair.client.engine.negotiatedALPN == "h2")
}

@Test func emptyOrOverlongProtocolNamesAreRejected() throws {
    let fixtures = try fixtures()
    for name in ["", String(repeating: "x", count: 256)] {
        #expect(throws: TLSError.self) { try fixtures.clientContext { $0.applicationProtocols = [name] } }
    }
}
