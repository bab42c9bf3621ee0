import CLinux
import Foundation
import Glibc
import Logging
import Synchronization

/// The operator's HTTP/1.1 listener: `GET /metrics` answers Prometheus text
/// exposition, anything else 404. One request per connection, bounded
/// reads, and `requestSeconds` for the whole request (a per-read timeout
/// alone let a peer trickling a byte a second hold it for hours). Each
/// connection is served on a thread of its own, `maxConcurrent` at once
/// (more are closed at once): served one after another, a few idle
/// connections delayed every scrape past Prometheus's 10 s timeout
/// (session 27: five held it ten seconds).
public final class MetricsEndpoint: @unchecked Sendable {
    let listenFD: Int32
    let logger: Logger
    public let boundAddress: SocketAddress
    /// The longest one connection may take to send its request.
    static let requestSeconds: Double = 5
    /// Connections served at once; beyond it new ones are closed unanswered.
    static let maxConcurrent = 64
    private let serving = Mutex(0)

    /// Binds the address (a taken port fails here, before the server does
    /// anything else); connections queue until `start`.
    public init(listen: SocketAddress, logger: Logger) throws {
        let (fd, bound) = try GRPCServer.listen(on: listen)
        // Blocking accept on this endpoint's own thread.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        self.listenFD = fd
        self.boundAddress = bound
        self.logger = logger
    }

    /// Serves `GET /metrics` with what `render` returns, on a thread of its own.
    public func start(render: @escaping @Sendable () -> [UInt8]) {
        let thread = Thread { [self] in
            while true {
                let client = accept(listenFD, nil, nil)
                if client < 0 {
                    let error = errno
                    // The listener itself is gone: stop. Anything else (an
                    // aborted connection, no descriptors left for now) passes.
                    if error == EBADF || error == EINVAL || error == ENOTSOCK { return }
                    if error != EINTR && error != ECONNABORTED {
                        logger.warning("metrics endpoint: accept failed; retrying", metadata: ["errno": "\(error)"])
                        usleep(100_000)
                    }
                    continue
                }
                let admitted = serving.withLock { count in
                    guard count < Self.maxConcurrent else { return false }
                    count += 1
                    return true
                }
                guard admitted else {
                    close(client)
                    continue
                }
                let started = Self.detachedThread { [self] in
                    serve(client, render: render)
                    close(client)
                    serving.withLock { $0 -= 1 }
                }
                if !started {  // (no thread to be had: the connection is let go, its slot freed)
                    close(client)
                    serving.withLock { $0 -= 1 }
                }
            }
        }
        thread.name = "billing-metrics"
        thread.start()
    }

    /// Runs `body` on a new detached thread; false if none could be made.
    /// (Foundation's `Thread.start` ignores pthread_create's failure: the
    /// body never ran, and its connection and slot were never given back.)
    private static func detachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let box = Unmanaged.passRetained(Box(body))
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            pthread_setname_np(pthread_self(), "billing-metrics")
            box.body()
            return nil
        }, box.toOpaque())
        if result != 0 { box.release() }
        return result == 0
    }

    private func serve(_ fd: Int32, render: () -> [UInt8]) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        // The request head only, at most 8 KiB, within `requestSeconds`.
        let deadline = Date().addingTimeInterval(Self.requestSeconds)
        while request.count < 8192, !request.ends(with: [13, 10, 13, 10]) {
            guard Date() < deadline else { return }
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { return }
            request.append(contentsOf: chunk[0..<count])
        }
        let line = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self)
        let response: [UInt8]
        if line.hasPrefix("GET /metrics ") || line == "GET /metrics" {
            let body = render()
            response = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body
        } else {
            response = Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        }
        var offset = 0
        while offset < response.count {
            let written = response.withUnsafeBytes { send(fd, $0.baseAddress! + offset, response.count - offset, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { return }
            offset += written
        }
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
