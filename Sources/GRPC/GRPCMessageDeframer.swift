/// Reassembles gRPC length-prefixed messages (1 flag byte, 4-byte big-endian
/// length, body) from DATA chunks split anywhere.
public struct GRPCMessageDeframer: Sendable {
    public struct Message: Sendable, Equatable {
        public var compressed: Bool
        public var bytes: [UInt8]

        public init(compressed: Bool, bytes: [UInt8]) {
            self.compressed = compressed
            self.bytes = bytes
        }
    }

    public enum Failure: Error, Sendable, Equatable {
        /// The prefix announced more than the limit; detected before buffering the body.
        case tooLarge(length: Int, limit: Int)
        /// The flag byte had bits other than the compression bit.
        case badFlags(UInt8)
    }

    public let maxMessageSize: Int
    private var buffer: [UInt8] = []
    private var readIndex = 0

    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// Bytes received but not yet returned as a message.
    public var bufferedCount: Int { buffer.count - readIndex }

    /// Takes a chunk without copying it when nothing is buffered (the usual
    /// case: one DATA frame carries one whole message).
    public mutating func append(_ bytes: [UInt8]) {
        if readIndex == buffer.count {
            buffer = bytes
            readIndex = 0
        } else {
            append(contentsOf: bytes)
        }
    }

    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        append(contentsOf: bytes)
    }

    private mutating func append<Bytes: Sequence>(contentsOf bytes: Bytes) where Bytes.Element == UInt8 {
        // Drop consumed bytes before growing, so a long stream of messages
        // does not keep its history.
        if readIndex > 0 && readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex > 4096 && readIndex * 2 > buffer.count {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, or nil when more bytes are needed.
    public mutating func next() throws(Failure) -> Message? {
        guard bufferedCount >= 5 else { return nil }
        let flags = buffer[readIndex]
        guard flags & ~1 == 0 else { throw .badFlags(flags) }
        let length = Int(buffer[readIndex + 1]) << 24 | Int(buffer[readIndex + 2]) << 16
            | Int(buffer[readIndex + 3]) << 8 | Int(buffer[readIndex + 4])
        guard length <= maxMessageSize else { throw .tooLarge(length: length, limit: maxMessageSize) }
        guard bufferedCount >= 5 + length else { return nil }
        if readIndex == 0 && buffer.count == 5 + length {
            // The buffer is exactly one message (the usual case): hand over
            // its storage minus the prefix instead of allocating a copy.
            var bytes = buffer
            buffer = []
            bytes.removeFirst(5)
            return Message(compressed: flags == 1, bytes: bytes)
        }
        let start = readIndex + 5
        let message = Message(compressed: flags == 1, bytes: Array(buffer[start..<start + length]))
        readIndex = start + length
        return message
    }
}

/// The five bytes in front of a message of `count` bytes (uncompressed),
/// the first in the lowest byte: for `HTTP2Session.sendResponse(head:)`.
func grpcPrefix(count: Int) -> UInt64 {
    precondition(count <= Int(UInt32.max))
    let length = UInt32(count)
    var prefix: UInt64 = 0  // byte 0: the compressed flag, 0
    for index in 0..<4 {
        prefix |= UInt64(UInt8(truncatingIfNeeded: length >> (8 * UInt32(3 - index)))) << (8 * UInt64(index + 1))
    }
    return prefix
}

/// Frames one message: the 5-byte prefix then the body.
public func grpcFrame(_ message: [UInt8]) -> [UInt8] {
    let prefix = grpcPrefix(count: message.count)
    var framed = [UInt8]()
    framed.reserveCapacity(message.count + 5)
    for index in 0..<5 { framed.append(UInt8(truncatingIfNeeded: prefix >> (8 * UInt64(index)))) }
    framed.append(contentsOf: message)
    return framed
}
