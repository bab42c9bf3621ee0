@testable import HTTP2
import Testing

/// A response body with a head (a gRPC prefix) in front: nghttp2 asks for
/// it in pieces of any size; the pieces are the head, then the body, once.
@Test(arguments: [1, 2, 3, 4, 5, 6, 7, 64])
func aBodyWithAHeadIsReadWholeInPiecesOfAnySize(piece: Int) {
    let head: [UInt8] = [0, 0, 0, 0, 11]
    let bytes = Array(UInt8(100)..<UInt8(111))
    let packed = head.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    var body = HTTP2Session.OutboundBody(head: packed, headCount: head.count, bytes: bytes, trailers: nil)
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0xEE, count: piece)
    while body.offset < body.total {
        let count = buffer.withUnsafeMutableBufferPointer { body.read(into: $0.baseAddress!, length: piece) }
        #expect(count == min(piece, head.count + bytes.count - out.count))
        out += buffer.prefix(count)
    }
    #expect(out == head + bytes)
    #expect(buffer.withUnsafeMutableBufferPointer { body.read(into: $0.baseAddress!, length: piece) } == 0)
}

@Test func aBodyWithoutAHeadIsItsBytes() {
    var body = HTTP2Session.OutboundBody(bytes: [1, 2, 3], trailers: nil)
    var buffer = [UInt8](repeating: 0, count: 8)
    #expect(buffer.withUnsafeMutableBufferPointer { body.read(into: $0.baseAddress!, length: 8) } == 3)
    #expect(buffer.prefix(3).elementsEqual([1, 2, 3]))
}
