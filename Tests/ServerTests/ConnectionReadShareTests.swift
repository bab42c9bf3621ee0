import CLinux
import Foundation
import GRPC
import Glibc
import Logging
@testable import Server
import Testing

/// One connection's bytes are read a share per loop turn (four full reads),
/// not until its socket is empty: a peer streaming frames that cause no
/// output (WINDOW_UPDATEs) held its loop — and the ledger on loop 0 — for
/// as long as it kept the socket full.
@Suite struct ConnectionReadShareTests {
    @Test func aFloodedConnectionReadsItsShareAndIsReadAgainNextTurn() throws {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let (serverSide, peerSide) = (fds[0], fds[1])
        defer { close(peerSide) }
        var size: Int32 = 4 << 20
        setsockopt(serverSide, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(peerSide, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(serverSide, F_SETFL, fcntl(serverSide, F_GETFL) | O_NONBLOCK)
        _ = fcntl(peerSide, F_SETFL, fcntl(peerSide, F_GETFL) | O_NONBLOCK)

        // The client preface, empty SETTINGS, then WINDOW_UPDATE(0, +1) frames.
        var flood = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
        let windowUpdate: [UInt8] = [0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        for _ in 0..<(1 << 20) / windowUpdate.count { flood += windowUpdate }
        let written = flood.withUnsafeBytes { write(peerSide, $0.baseAddress, $0.count) }
        try #require(written > 5 * 65_536, "the socket took only \(written) bytes")

        let loop = try EventLoop(index: 0, logger: Logger(label: "test"))
        let server = ServerState(configuration: ServerConfiguration(listen: SocketAddress(host: "127.0.0.1", port: 0), threads: 1),
                                 router: GRPCRouter(), loops: [loop])
        let connection = try Connection(fd: serverSide, peer: "test", loop: loop, server: server)
        defer { connection.close() }
        connection.onReadable()
        #expect(loop.readAgain.count == 1 && loop.readAgain.first === connection)
        #expect(!connection.isClosed)
        // What it left in the socket: everything but its four full reads.
        let other = try #require(loop.readAgain.first)
        loop.readAgain.removeAll()
        var unread = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(serverSide, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            unread += count
        }
        #expect(other === connection)
        #expect(Int(written) - unread == Connection.maxReadsPerTurn * loop.readBuffer.count)
    }
}

/// A peer that connects and never begins HTTP/2 (no preface, or a TLS
/// handshake left hanging) is closed once the handshake timeout passes; one
/// that sent its preface and SETTINGS is left to the idle timeout.
@Suite struct HandshakeTimeoutTests {
    @Test func aConnectionThatNeverBeginsHTTP2IsClosedByTheSweep() throws {
        let loop = try EventLoop(index: 0, logger: Logger(label: "test"))
        let server = ServerState(configuration: ServerConfiguration(listen: SocketAddress(host: "127.0.0.1", port: 0), threads: 1),
                                 router: GRPCRouter(), loops: [loop])
        var pairs: [[Int32]] = []
        var connections: [Connection] = []
        for _ in 0..<2 {
            var fds: [Int32] = [-1, -1]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
            pairs.append(fds)
            let connection = try Connection(fd: fds[0], peer: "test", loop: loop, server: server)
            loop.add(connection)
            connections.append(connection)
        }
        defer { for fds in pairs { close(fds[1]) } }
        // The second peer begins HTTP/2: its preface and an empty SETTINGS.
        let hello = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
        #expect(hello.withUnsafeBytes { write(pairs[1][1], $0.baseAddress, $0.count) } == hello.count)
        connections[1].onReadable()
        #expect(!connections[0].grpc.peerIsSpeakingHTTP2)
        #expect(connections[1].grpc.peerIsSpeakingHTTP2)

        loop.sweepIdle(timeoutNanos: .max, requestTimeoutNanos: .max, handshakeTimeoutNanos: 0)
        #expect(connections[0].isClosed)
        #expect(!connections[1].isClosed)
        connections[1].close()
    }
}
