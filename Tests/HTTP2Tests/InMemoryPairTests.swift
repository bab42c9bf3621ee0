import HTTP2
import Testing

/// A client session and a server session trading bytes in memory.
struct Pair {
    let client: HTTP2Session
    let server: HTTP2Session
    var serverEvents: [HTTP2Event] = []
    var clientEvents: [HTTP2Event] = []

    init(serverLimits: HTTP2Limits = HTTP2Limits()) throws {
        client = try HTTP2Session(role: .client)
        server = try HTTP2Session(role: .server, limits: serverLimits)
    }

    /// Moves bytes both ways until neither side has anything to send.
    mutating func pump(now: UInt64 = 0) throws {
        for _ in 0..<100 {
            var toServer: [UInt8] = []
            try client.drainOutput(into: &toServer)
            var toClient: [UInt8] = []
            try server.drainOutput(into: &toClient)
            if toServer.isEmpty && toClient.isEmpty { return }
            serverEvents += try server.receive(toServer, now: now)
            clientEvents += try client.receive(toClient, now: now)
        }
        Issue.record("pump did not settle")
    }
}

let requestHeaders = [
    HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", "/pkg.S/M"),
    HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"),
    HTTP2Header("te", "trailers"),
]

@Test func requestAndResponseWithTrailersRoundTrip() throws {
    var pair = try Pair()
    let streamID = try pair.client.sendRequest(headers: requestHeaders, body: [1, 2, 3])
    try pair.pump()
    #expect(pair.serverEvents.contains(.headers(streamID: streamID, headers: HTTP2HeaderBlock(requestHeaders), endStream: false)))
    #expect(pair.serverEvents.contains(.data(streamID: streamID, bytes: [1, 2, 3])))
    #expect(pair.serverEvents.contains(.endStream(streamID: streamID)))

    try pair.server.sendResponse(
        streamID: streamID, headers: [HTTP2Header(":status", "200")], body: [9, 8],
        trailers: [HTTP2Header("grpc-status", "0")])
    try pair.pump()
    let headerBlocks = pair.clientEvents.compactMap { event -> [HTTP2Header]? in
        if case let .headers(id, headers, _) = event, id == streamID { return headers.headers }
        return nil
    }
    #expect(headerBlocks == [[HTTP2Header(":status", "200")], [HTTP2Header("grpc-status", "0")]])
    #expect(pair.clientEvents.contains(.data(streamID: streamID, bytes: [9, 8])))
    #expect(pair.clientEvents.contains(.streamClosed(streamID: streamID, errorCode: 0)))
}

@Test func trailersOnlyResponseEndsTheStreamInOneBlock() throws {
    var pair = try Pair()
    let streamID = try pair.client.sendRequest(headers: requestHeaders, body: [])
    try pair.pump()
    try pair.server.sendResponse(streamID: streamID, headers: [HTTP2Header(":status", "200"), HTTP2Header("grpc-status", "12")])
    try pair.pump()
    #expect(pair.clientEvents.contains(.headers(
        streamID: streamID, headers: HTTP2HeaderBlock([HTTP2Header(":status", "200"), HTTP2Header("grpc-status", "12")]),
        endStream: true)))
}

@Test func largeBodyCrossesFlowControlWindows() throws {
    var pair = try Pair()
    let body = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    let streamID = try pair.client.sendRequest(headers: requestHeaders, body: body)
    try pair.pump()
    var received: [UInt8] = []
    for case let .data(id, bytes) in pair.serverEvents where id == streamID { received += bytes }
    #expect(received == body)
}

@Test func oversizedHeaderListResetsOnlyThatStream() throws {
    var limits = HTTP2Limits()
    limits.maxHeaderListSize = 1024
    var pair = try Pair(serverLimits: limits)
    let big = requestHeaders + [HTTP2Header("x-big", String(repeating: "a", count: 2000))]
    let bad = try pair.client.sendRequest(headers: big, body: [])
    let good = try pair.client.sendRequest(headers: requestHeaders, body: [7])
    try pair.pump()
    #expect(pair.serverEvents.contains(.headerListTooLarge(streamID: bad)))
    #expect(pair.serverEvents.contains(.data(streamID: good, bytes: [7])))
    #expect(pair.clientEvents.contains { if case .streamClosed(bad, let code) = $0 { code != 0 } else { false } })
}

@Test func garbageInsteadOfPrefaceIsAProtocolViolation() throws {
    let server = try HTTP2Session(role: .server)
    #expect(throws: HTTP2Error.self) {
        _ = try server.receive(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
    }
}

@Test func rapidResetFloodEndsTheConnection() throws {
    var limits = HTTP2Limits()
    limits.resetBurst = 50
    limits.resetsPerSecond = 1
    let pair = try Pair(serverLimits: limits)
    var thrown = false
    for _ in 0..<200 {
        let id = try pair.client.sendRequest(headers: requestHeaders, body: [])
        var bytes: [UInt8] = []
        try pair.client.drainOutput(into: &bytes)  // HEADERS on the wire first,
        pair.client.resetStream(id, errorCode: 8)   // then the reset
        try pair.client.drainOutput(into: &bytes)
        do { _ = try pair.server.receive(bytes, now: 1) } catch HTTP2Error.enhanceYourCalm { thrown = true; break }
    }
    #expect(thrown)
    // The server's GOAWAY says ENHANCE_YOUR_CALM (0xb).
    var toClient: [UInt8] = []
    try pair.server.drainOutput(into: &toClient)
    let events = try pair.client.receive(toClient)
    #expect(events.contains { if case .goAway(_, 0xb) = $0 { true } else { false } })
}

@Test func pingFloodWithoutDataEndsTheConnection() throws {
    let pair = try Pair()
    var thrown = false
    for _ in 0..<500 {
        pair.client.ping()
        var bytes: [UInt8] = []
        try pair.client.drainOutput(into: &bytes)
        do { _ = try pair.server.receive(bytes) } catch HTTP2Error.enhanceYourCalm { thrown = true; break }
    }
    #expect(thrown)
}

@Test func bytesFedOneAtATimeGiveTheSameEvents() throws {
    let pair = try Pair()
    let streamID = try pair.client.sendRequest(headers: requestHeaders, body: Array(0..<200))
    var bytes: [UInt8] = []
    try pair.client.drainOutput(into: &bytes)
    var events: [HTTP2Event] = []
    for byte in bytes { events += try pair.server.receive([byte]) }
    #expect(events.contains(.headers(streamID: streamID, headers: HTTP2HeaderBlock(requestHeaders), endStream: false)))
    var body: [UInt8] = []
    for case let .data(id, chunk) in events where id == streamID { body += chunk }
    #expect(body == Array(0..<200))
    #expect(events.contains(.endStream(streamID: streamID)))
}

/// "MadeYouReset" (CVE-2025-8671): stream errors the peer provokes — each
/// answered with the server's own RST_STREAM — count with its resets; a
/// flood of them ends the connection with ENHANCE_YOUR_CALM.
@Test func aFloodOfProvokedStreamErrorsEndsTheConnection() throws {
    var limits = HTTP2Limits()
    limits.resetBurst = 50
    limits.resetsPerSecond = 1
    let pair = try Pair(serverLimits: limits)
    var streams = 0
    var thrown = false
    for _ in 0..<200 {
        let id = try pair.client.sendRequest(headers: requestHeaders, body: [1])
        var bytes: [UInt8] = []
        try pair.client.drainOutput(into: &bytes)
        // WINDOW_UPDATE overflowing the stream's send window: a stream error.
        let stream = UInt32(id)
        bytes += [0, 0, 4, 0x8, 0, UInt8(stream >> 24), UInt8(truncatingIfNeeded: stream >> 16),
                  UInt8(truncatingIfNeeded: stream >> 8), UInt8(truncatingIfNeeded: stream), 0x7f, 0xff, 0xff, 0xff]
        do {
            _ = try pair.server.receive(bytes, now: 1)
        } catch HTTP2Error.enhanceYourCalm {
            thrown = true
            break
        }
        #expect(pair.server.streamFailed(id))
        streams += 1
        var toClient: [UInt8] = []
        try pair.server.drainOutput(into: &toClient)  // its RST_STREAM (FLOW_CONTROL_ERROR)
        _ = try pair.client.receive(toClient)
        #expect(!pair.server.streamFailed(id))  // closed: forgotten
    }
    #expect(thrown && streams == 50, "\(streams) stream errors before the connection ended")
    var toClient: [UInt8] = []
    try pair.server.drainOutput(into: &toClient)
    let events = try pair.client.receive(toClient)
    #expect(events.contains { if case .goAway(_, 0xb) = $0 { true } else { false } })
}

/// Header blocks over the limit (each stream reset by the server) count with
/// the peer's resets: a flood of them ends the connection.
@Test func aFloodOfOversizedHeaderBlocksEndsTheConnection() throws {
    var limits = HTTP2Limits()
    limits.maxHeaderListSize = 1024
    limits.resetBurst = 5
    limits.resetsPerSecond = 1
    let pair = try Pair(serverLimits: limits)
    let big = requestHeaders + [HTTP2Header("x-big", String(repeating: "a", count: 2000))]
    var refused = 0
    var thrown = false
    for _ in 0..<20 {
        _ = try pair.client.sendRequest(headers: big, body: [])
        var bytes: [UInt8] = []
        try pair.client.drainOutput(into: &bytes)
        do { _ = try pair.server.receive(bytes, now: 1) } catch HTTP2Error.enhanceYourCalm { thrown = true; break }
        refused += 1
    }
    #expect(thrown && refused == 5, "\(refused) oversized blocks before the connection ended")
}

/// A graceful shutdown takes RFC 9113's two steps: a GOAWAY naming the
/// largest stream id with a PING, then, once the PING's ACK is back, the
/// GOAWAY naming the last stream served. A stream the client opened before
/// it read the first GOAWAY is served; one opened after the second is not.
@Test func gracefulShutdownSendsTwoGoAwaysAPingApart() throws {
    var pair = try Pair()
    let first = try pair.client.sendRequest(headers: requestHeaders, body: [1])
    try pair.pump()
    pair.server.beginShutdown()
    // The first GOAWAY and the PING reach the client, in that order (a PING
    // first could be acknowledged before the GOAWAY was read); a stream it
    // opened meanwhile (sent before it read them) reaches the server after.
    var toClient: [UInt8] = []
    try pair.server.drainOutput(into: &toClient)
    #expect(frameTypes(toClient) == [0x7, 0x6], "GOAWAY then PING")
    let inFlight = try pair.client.sendRequest(headers: requestHeaders, body: [2])
    var toServer: [UInt8] = []
    try pair.client.drainOutput(into: &toServer)
    pair.serverEvents += try pair.server.receive(toServer, now: 0)
    #expect(pair.serverEvents.contains(.endStream(streamID: inFlight)), "a stream sent before the client heard was refused")
    pair.clientEvents += try pair.client.receive(toClient, now: 0)
    #expect(pair.clientEvents.contains(.goAway(lastStreamID: Int32.max, errorCode: 0)))
    // The client's PING ACK brings the final GOAWAY, naming the last stream served.
    try pair.pump()
    #expect(pair.clientEvents.contains(.goAway(lastStreamID: inFlight, errorCode: 0)))
    #expect(first < inFlight)
    // Both streams are still answered.
    for stream in [first, inFlight] {
        try pair.server.sendResponse(streamID: stream, headers: [HTTP2Header(":status", "200"), HTTP2Header("grpc-status", "0")])
    }
    try pair.pump()
    for stream in [first, inFlight] {
        #expect(pair.clientEvents.contains(.streamClosed(streamID: stream, errorCode: 0)))
    }
    #expect(!pair.server.isActive)
}

/// When the peer will send nothing more, the final GOAWAY goes at once.
@Test func aOneStepShutdownSendsTheFinalGoAwayAtOnce() throws {
    var pair = try Pair()
    let stream = try pair.client.sendRequest(headers: requestHeaders, body: [1])
    try pair.pump()
    pair.server.beginShutdown(twoStep: false)
    try pair.pump()
    #expect(pair.clientEvents.contains(.goAway(lastStreamID: stream, errorCode: 0)))
    #expect(!pair.clientEvents.contains(.goAway(lastStreamID: Int32.max, errorCode: 0)))
}

/// A peer that never acknowledges the PING gets the final GOAWAY when the
/// server gives up waiting (`finishShutdown`); without a pending two-step
/// shutdown that does nothing.
@Test func finishingAShutdownWithoutTheAckSendsTheFinalGoAway() throws {
    var pair = try Pair()
    let stream = try pair.client.sendRequest(headers: requestHeaders, body: [1])
    try pair.pump()
    pair.server.finishShutdown()
    #expect(!pair.server.wantsWrite)
    pair.server.beginShutdown()
    var toClient: [UInt8] = []
    try pair.server.drainOutput(into: &toClient)  // the first GOAWAY and the PING, never answered
    pair.server.finishShutdown()
    var final: [UInt8] = []
    try pair.server.drainOutput(into: &final)
    #expect(frameTypes(final) == [0x7])
    pair.clientEvents += try pair.client.receive(toClient + final, now: 0)
    #expect(pair.clientEvents.contains(.goAway(lastStreamID: stream, errorCode: 0)))
}

/// The frame types in `bytes` (whole frames), in order.
func frameTypes(_ bytes: [UInt8]) -> [UInt8] {
    var types: [UInt8] = []
    var at = 0
    while at + 9 <= bytes.count {
        let length = Int(bytes[at]) << 16 | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2])
        types.append(bytes[at + 3])
        at += 9 + length
    }
    return types
}
