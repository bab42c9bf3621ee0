import TLS
import Testing

/// Bytes a confused or hostile client might send to a TLS port.
let garbage: [String: [UInt8]] = [
    "HTTP/1.1 request": Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8),
    "cleartext h2 preface": Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8),
    "handshake record holding nonsense": [0x16, 0x03, 0x01, 0x00, 0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    "4 KiB of noise": (0..<4096).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) },
]

@Test(arguments: garbage.keys.sorted())
func garbageInsteadOfClientHelloThrows(kind: String) throws {
    let fixtures = try fixtures()
    let server = try TLSEngine(context: try fixtures.serverContext())
    server.receiveCiphertext(garbage[kind]!)
    var plaintext: [UInt8] = []
    let error = try #require(throws: TLSError.self) { try server.readPlaintext(into: &plaintext) }
    #expect(error.kind == .handshake)
    #expect(!error.openSSLErrors.isEmpty)
    #expect(plaintext.isEmpty)

    // The engine stays failed; it may hold an alert to send before closing.
    #expect(throws: error) { try server.readPlaintext(into: &plaintext) }
    #expect(throws: error) { try server.writePlaintext([1]) }
    var alert: [UInt8] = []
    server.drainCiphertext(into: &alert)
    #expect(alert.count <= 7 + 64)
}

@Test func corruptedRecordAfterTheHandshakeThrows() throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(server: try fixtures.serverContext(), client: try fixtures.clientContext())
    pair.pump()
    try pair.client.engine.writePlaintext(Array("sensitive".utf8))
    var record: [UInt8] = []
    pair.client.engine.drainCiphertext(into: &record)
    record[record.count - 1] ^= 0x01  // flip a bit of the authentication tag

    pair.server.engine.receiveCiphertext(record)
    var plaintext: [UInt8] = []
    let error = try #require(throws: TLSError.self) { try pair.server.engine.readPlaintext(into: &plaintext) }
    #expect(error.kind == .connection)
    #expect(plaintext.isEmpty)
}

@Test func truncatedRecordWaitsForTheRest() throws {
    let fixtures = try fixtures()
    var pair = try EnginePair(server: try fixtures.serverContext(), client: try fixtures.clientContext())
    pair.pump()
    try pair.client.engine.writePlaintext(Array("split".utf8))
    var record: [UInt8] = []
    pair.client.engine.drainCiphertext(into: &record)

    var plaintext: [UInt8] = []
    pair.server.engine.receiveCiphertext(Array(record[..<10]))
    #expect(try pair.server.engine.readPlaintext(into: &plaintext) == .established)
    #expect(plaintext.isEmpty)
    pair.server.engine.receiveCiphertext(Array(record[10...]))
    #expect(try pair.server.engine.readPlaintext(into: &plaintext) == .established)
    #expect(plaintext == Array("split".utf8))
}
