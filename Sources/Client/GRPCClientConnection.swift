import CLinux
import Glibc
import GRPC
public import HTTP2
public import TLS

/// A gRPC client over one HTTP/2 connection (h2c or TLS), driven by one
/// thread with blocking sockets: `start` queues calls, `flush` writes,
/// `poll` reads and returns the calls that finished. Used by `billing load`
/// and `billing call`; not for use from several threads at once.
public final class GRPCClientConnection {
    public struct Completion: Sendable {
        public let streamID: Int32
        /// grpc-status; -1 when the stream ended without one (reset, HTTP error).
        public let status: Int
        public let message: String
        /// Serialized response message (deframed), empty on error.
        public let response: [UInt8]
        /// `grpc-status-details-bin`, undecoded base64.
        public let details: String?
    }

    public let fd: Int32
    let session: HTTP2Session
    let tls: TLSEngine?
    let authority: String
    let scheme: String
    var pending: [Int32: (headers: [HTTP2Header], body: [UInt8])] = [:]
    var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    var output: [UInt8] = []
    var plaintext: [UInt8] = []
    public private(set) var isClosed = false

    /// Connects (blocking) to `host` — a name (`localhost`), an IPv4
    /// address, or an IPv6 one with or without brackets (`[::1]`) — trying
    /// each address it resolves to in turn.
    public init(host: String, port: UInt16, tls: TLSContext? = nil) throws {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let socketFD = try Self.connect(bare, port)
        var one: Int32 = 1
        setsockopt(socketFD, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        fd = socketFD
        session = try HTTP2Session(role: .client)
        self.tls = try tls.map { try TLSEngine(context: $0) }
        authority = bare.contains(":") ? "[\(bare)]:\(port)" : "\(bare):\(port)"
        scheme = tls == nil ? "http" : "https"
        try flush()
    }

    /// A connected stream socket to the first of `host`'s addresses that accepts.
    private static func connect(_ host: String, _ port: UInt16) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw ClientError("cannot resolve \(host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(first) }
        var lastError: Int32 = 0
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            next = info.pointee.ai_next
            let socketFD = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard socketFD >= 0 else {
                lastError = errno
                continue
            }
            if Glibc.connect(socketFD, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return socketFD }
            lastError = errno
            close(socketFD)
        }
        throw ClientError("connect \(host):\(port): \(String(cString: strerror(lastError)))")
    }

    deinit {
        close(fd)
    }

    /// Queues a unary call; returns its stream id. Call `flush` to send.
    public func start(path: String, message: [UInt8], metadata: [HTTP2Header] = []) throws -> Int32 {
        var headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", scheme), HTTP2Header(":path", path),
            HTTP2Header(":authority", authority), HTTP2Header("content-type", "application/grpc"),
            HTTP2Header("te", "trailers"),
        ]
        headers.append(contentsOf: metadata)
        let id = try session.sendRequest(headers: headers, body: grpcFrame(message))
        pending[id] = ([], [])
        return id
    }

    /// Writes everything the session has to send.
    public func flush() throws {
        if let tls {
            // (The read path decrypts into the same buffer.)
            plaintext.removeAll(keepingCapacity: plaintext.capacity <= 256 * 1024)
            try session.drainOutput(into: &plaintext)
            if !plaintext.isEmpty { try tls.writePlaintext(plaintext, drainingInto: &output) }
            tls.drainCiphertext(into: &output)
        } else {
            try session.drainOutput(into: &output)
        }
        var offset = 0
        while offset < output.count {
            let written = output.withUnsafeBytes { send(fd, $0.baseAddress! + offset, output.count - offset, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ClientError("write: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        output.removeAll(keepingCapacity: true)
    }

    /// Waits up to `timeoutMillis` for bytes, feeds them to the session and
    /// returns the calls that completed.
    public func poll(timeoutMillis: Int32) throws -> [Completion] {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = Glibc.poll(&descriptor, 1, timeoutMillis)
        guard ready > 0 else { return [] }
        let count = readBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else {
            isClosed = true
            throw ClientError(count == 0 ? "server closed the connection" : "read: \(String(cString: strerror(errno)))")
        }
        var events: [HTTP2Event] = []
        if let tls {
            tls.receiveCiphertext(UnsafeRawBufferPointer(rebasing: readBuffer.withUnsafeBytes { $0 }[0..<count]))
            plaintext.removeAll(keepingCapacity: true)
            _ = try tls.readPlaintext(into: &plaintext)
            events = try session.receive(plaintext)
        } else {
            events = try readBuffer.withUnsafeBytes { try session.receive(UnsafeRawBufferPointer(rebasing: $0[0..<count]), now: 0) }
        }
        var done: [Completion] = []
        for event in events {
            switch event {
            case let .headers(id, block, _):
                pending[id]?.headers.append(contentsOf: block.headers)
            case let .data(id, bytes):
                pending[id]?.body.append(contentsOf: bytes)
            case let .streamClosed(id, _):
                if let call = pending.removeValue(forKey: id) { done.append(Self.completion(id, call)) }
            default:
                break
            }
        }
        try flush()  // WINDOW_UPDATE, SETTINGS ACK, PING ACK
        return done
    }

    /// One call, start to finish (for provisioning and `billing call`).
    public func call(path: String, message: [UInt8], metadata: [HTTP2Header] = [], timeoutMillis: Int32 = 30_000) throws -> Completion {
        let id = try start(path: path, message: message, metadata: metadata)
        try flush()
        // Measured on the clock (session 29: each poll counted as 100 ms
        // however soon its data came, so a large answer read in many chunks
        // "timed out" within a fraction of the time allowed).
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutMillis))
        while ContinuousClock.now < deadline {
            for completion in try poll(timeoutMillis: 100) where completion.streamID == id { return completion }
        }
        throw ClientError("no answer within \(timeoutMillis) ms")
    }

    static func completion(_ id: Int32, _ call: (headers: [HTTP2Header], body: [UInt8])) -> Completion {
        let status = call.headers.first("grpc-status").flatMap { Int($0) } ?? -1
        var response: [UInt8] = []
        if call.body.count >= 5 {
            let length = Int(call.body[1]) << 24 | Int(call.body[2]) << 16 | Int(call.body[3]) << 8 | Int(call.body[4])
            if call.body.count >= 5 + length { response = Array(call.body[5..<5 + length]) }
        }
        return Completion(streamID: id, status: status, message: percentDecode(call.headers.first("grpc-message") ?? ""),
                          response: response, details: call.headers.first("grpc-status-details-bin"))
    }
}

public struct ClientError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `grpc-message` is percent-encoded.
func percentDecode(_ text: String) -> String {
    guard text.contains("%") else { return text }
    var bytes: [UInt8] = []
    var iterator = Array(text.utf8).makeIterator()
    while let byte = iterator.next() {
        if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
           let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
            bytes.append(value)
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
