import BillingCore
import TLS
import Testing

@Test func applicationDataFlowsBothWays() throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(server: try fixtures.serverContext(), client: try fixtures.clientContext())
    pair.pump()

    try pair.client.engine.writePlaintext(Array("ping".utf8))
    pair.pump()
    #expect(pair.server.plaintext == Array("ping".utf8))

    try pair.server.engine.writePlaintext(Array("pong".utf8))
    pair.pump()
    #expect(pair.client.plaintext == Array("pong".utf8))
}

@Test func writesBeforeTheHandshakeAreSentAfterIt() throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(server: try fixtures.serverContext(), client: try fixtures.clientContext())
    // What HTTP/2 does: both sides queue their preface/SETTINGS at once.
    try pair.client.engine.writePlaintext(Array("client first".utf8))
    try pair.server.engine.writePlaintext(Array("server first".utf8))
    pair.pump()

    #expect(pair.isEstablished)
    #expect(pair.server.plaintext == Array("client first".utf8))
    #expect(pair.client.plaintext == Array("server first".utf8))
}

@Test(arguments: [7, 42, 20_260_101] as [UInt64])
func oneMebibyteEachWayInRandomPieces(seed: UInt64) throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(server: try fixtures.serverContext(), client: try fixtures.clientContext(), seed: seed)
    pair.pump()
    #expect(pair.isEstablished)

    var random = SplitMix64(seed: seed)
    let request = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }
    let response = Array(request.reversed())
    try write(request, to: pair.client.engine, using: &random)
    try write(response, to: pair.server.engine, using: &random)
    pair.pump()

    #expect(pair.server.plaintext.count == request.count, "seed \(seed)")
    #expect(pair.server.plaintext == request, "seed \(seed)")
    #expect(pair.client.plaintext == response, "seed \(seed)")
    #expect(pair.server.state == .established && pair.client.state == .established)
}

/// Writes `bytes` in random-size pieces.
private func write(_ bytes: [UInt8], to engine: TLSEngine, using random: inout SplitMix64) throws {
    var offset = 0
    while offset < bytes.count {
        let size = Int.random(in: 1...min(bytes.count - offset, 40_000), using: &random)
        try bytes.withUnsafeBytes { try engine.writePlaintext(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + size])) }
        offset += size
    }
}

@Test func closeNotifyIsReportedAsClosed() throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(server: try fixtures.serverContext(), client: try fixtures.clientContext())
    pair.pump()
    try pair.client.engine.writePlaintext(Array("last words".utf8))
    pair.client.engine.shutdown()
    pair.pump()

    #expect(pair.server.plaintext == Array("last words".utf8))
    #expect(pair.server.state == .closed)
    #expect(pair.server.error == nil)
    var more: [UInt8] = []
    #expect(try pair.server.engine.readPlaintext(into: &more) == .closed)
    #expect(throws: TLSError(kind: .closed, message: "write after close_notify was sent")) {
        try pair.client.engine.writePlaintext([1])
    }

    // The server answers with its own close_notify.
    pair.server.engine.shutdown()
    pair.pump()
    #expect(pair.client.state == .closed)
}

@Test func shutdownBeforeTheHandshakeSendsNothing() throws {
    let fixtures = try fixtures()
    let server = try TLSEngine(context: try fixtures.serverContext())
    server.shutdown()
    var output: [UInt8] = []
    server.drainCiphertext(into: &output)
    #expect(output.isEmpty)
    #expect(throws: TLSError.self) { try server.writePlaintext([1]) }
}
