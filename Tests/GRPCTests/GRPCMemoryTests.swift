import HTTP2
import Testing

/// A long-lived connection keeps nothing per finished call (the platform's
/// services hold their channels open for days): a stream closes when the
/// server sends its last frame, and its call is forgotten then, without
/// waiting for more bytes from the peer.
@Test func finishedCallsAreForgottenWhenTheirLastFrameIsSent() throws {
    let h = try Harness()
    for index in 0..<5_000 {
        let id = try h.call("/test.Echo/Inline", body: [0, 0, 0, 0, 1, 7])
        #expect(h.status(id) == 0)
        #expect(h.server.openCallCount == 0, "call \(index) is still held after its response was sent")
        h.events.removeAll()
    }
    // And for the calls answered by a status alone (trailers-only).
    let id = try h.call("/test.Echo/Missing", body: [0, 0, 0, 0, 0])
    #expect(h.status(id) == 12)
    #expect(h.server.openCallCount == 0)
}
