@testable import GRPC
import Testing

let messages: [[UInt8]] = [[], [1], Array(repeating: 7, count: 300), Array(0..<255)]
let stream: [UInt8] = messages.flatMap(grpcFrame)

@Test func framesFedOneByteAtATime() throws {
    var deframer = GRPCMessageDeframer(maxMessageSize: 1024)
    var out: [[UInt8]] = []
    for byte in stream {
        deframer.append([byte])
        while let message = try deframer.next() { out.append(message.bytes) }
    }
    #expect(out == messages)
    #expect(deframer.bufferedCount == 0)
}

@Test(arguments: 0...60)
func framesSplitAtEveryBoundary(split: Int) throws {
    // Every split point of the first 60 bytes, which covers each prefix and body edge.
    var deframer = GRPCMessageDeframer(maxMessageSize: 1024)
    var out: [[UInt8]] = []
    deframer.append(stream[..<split])
    while let message = try deframer.next() { out.append(message.bytes) }
    deframer.append(stream[split...])
    while let message = try deframer.next() { out.append(message.bytes) }
    #expect(out == messages)
}

@Test func oversizedLengthIsRefusedBeforeTheBodyArrives() {
    var deframer = GRPCMessageDeframer(maxMessageSize: 100)
    deframer.append([0, 0, 0, 0, 101])
    #expect(throws: GRPCMessageDeframer.Failure.tooLarge(length: 101, limit: 100)) { try deframer.next() }
}

@Test func compressedFlagIsReportedAndUnknownFlagsRefused() throws {
    var deframer = GRPCMessageDeframer(maxMessageSize: 100)
    deframer.append([1, 0, 0, 0, 1, 42])
    #expect(try deframer.next() == .init(compressed: true, bytes: [42]))
    deframer.append([2, 0, 0, 0, 0])
    #expect(throws: GRPCMessageDeframer.Failure.badFlags(2)) { try deframer.next() }
}

@Test(arguments: [
    ("1S", UInt64(1_000_000_000)), ("250m", 250_000_000), ("3u", 3_000), ("99999999n", 99_999_999),
    ("2M", 120_000_000_000), ("1H", 3_600_000_000_000),
])
func timeoutsParse(text: String, nanos: UInt64) {
    #expect(parseGRPCTimeout(text) == nanos)
}

@Test(arguments: ["", "S", "1", "123456789S", "1s", "-1S", "1.5S", "１S"])
func malformedTimeoutsAreRejected(text: String) {
    #expect(parseGRPCTimeout(text) == nil)
}

/// A response goes out as a prefix the session sends ahead of the message
/// (no framed copy): the same five bytes `grpcFrame` writes.
@Test func thePrefixIsTheFramesFirstFiveBytes() {
    for count in [0, 1, 255, 256, 65_535, 65_536, 16_777_216, Int(UInt32.max)] {
        let prefix = grpcPrefix(count: count)
        let bytes = (0..<5).map { UInt8(truncatingIfNeeded: prefix >> (8 * UInt64($0))) }
        let length = UInt32(count)
        #expect(bytes == [0, UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                          UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)], "\(count)")
        #expect(prefix >> 40 == 0)
    }
    for message in messages { #expect(grpcFrame(message).prefix(5).elementsEqual(
        (0..<5).map { UInt8(truncatingIfNeeded: grpcPrefix(count: message.count) >> (8 * UInt64($0))) })) }
}
