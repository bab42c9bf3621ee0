import GRPC
import Glibc
import Logging
import Metrics
import TLS

/// One accepted socket: bytes from the socket go through TLS (when
/// configured) into the gRPC connection, and its output goes back the same
/// way. Lives on one loop's thread.
final class Connection: GRPCConnectionHost {
    let fd: Int32
    let peer: String
    unowned let loop: EventLoop
    let server: ServerState
    var grpc: GRPCServerConnection!
    let tls: TLSEngine?
    var isDirty = false
    var isClosed = false
    /// When it was accepted (loop clock).
    let openedNanos: UInt64
    /// Bytes for the socket not yet written, from `outputOffset` on.
    var output: [UInt8] = []
    var outputOffset = 0
    /// Plaintext from HTTP/2 before encryption (TLS only).
    var plaintextOut: [UInt8] = []
    var plaintextIn: [UInt8] = []
    /// Reading stopped because too much output is waiting for the peer.
    var readPaused = false
    /// The peer shut its side (TCP FIN): nothing more to read, while the
    /// answers to what it sent still go out.
    var inputClosed = false
    /// epoll said the peer's side is shut: read until `read` says so too.
    var peerShutDownSeen = false

    init(fd: Int32, peer: String, loop: EventLoop, server: ServerState) throws {
        self.fd = fd
        self.peer = peer
        self.loop = loop
        self.server = server
        self.openedNanos = loop.nowNanos
        self.tls = try server.configuration.tls.map { try TLSEngine(context: $0) }
        self.grpc = try GRPCServerConnection(
            router: server.router, configuration: server.configuration.grpc, loop: loop, peer: peer,
            logger: loop.logger)
        grpc.host = self
    }

    /// Full reads (of the loop's 64 KiB buffer) one connection gets per turn.
    static let maxReadsPerTurn = 4

    func connectionHasOutput() {
        loop.markDirty(self)
    }

    /// Reads what the peer sent. `peerShutDown`: epoll reported the peer's
    /// side shut (EPOLLRDHUP or EPOLLHUP): read on to the end even after a
    /// short read, or the FIN — edge-triggered, never reported again — goes
    /// unseen and the connection lingers to the idle timeout. `peerGone`:
    /// EPOLLHUP or EPOLLERR, the connection is over both ways.
    func onReadable(peerShutDown: Bool = false, peerGone: Bool = false) {
        guard !isClosed else { return }
        if peerShutDown { peerShutDownSeen = true }  // (kept for the reads of later turns)
        if inputClosed {
            // (After the peer's FIN every edge still reports it readable.)
            // Gone altogether (a reset, both sides closed): nothing more can be sent.
            if peerGone { close() }
            return
        }
        if pendingOutputCount > server.configuration.maxPendingOutputBytes {
            readPaused = true
            return
        }
        var reads = 0
        while !isClosed && !inputClosed {
            let count = loop.readBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                let ok = loop.readBuffer.withUnsafeBytes { deliver(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                if !ok { return }
                if count < loop.readBuffer.count && !peerShutDownSeen { break }
                // A full buffer: more may wait. One peer gets this many reads
                // a turn (a flood of frames that cause no output would
                // otherwise hold the loop, and the ledger on loop 0).
                reads += 1
                if reads == Self.maxReadsPerTurn {
                    loop.readAgain.append(self)
                    break
                }
            } else if count == 0 {
                // The peer finished sending (a half-close, or all of its
                // close): calls whose requests arrived are still answered,
                // then the connection ends (`flush` closes it once HTTP/2
                // has nothing left). Closed at once, they were dropped — a
                // debit charged and never acknowledged.
                inputClosed = true
                grpc.peerFinishedSending()
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                break
            } else if errno != EINTR {
                close()
                return
            }
        }
        loop.markDirty(self)
    }

    /// Hands socket bytes to TLS/HTTP/2. False when the connection is ending.
    private func deliver(_ bytes: UnsafeRawBufferPointer) -> Bool {
        do {
            if let tls {
                tls.receiveCiphertext(bytes)
                plaintextIn.removeAll(keepingCapacity: true)
                let state = try tls.readPlaintext(into: &plaintextIn)
                if !plaintextIn.isEmpty {
                    try plaintextIn.withUnsafeBytes { try grpc.receive($0) }
                }
                if state == .closed {
                    endAfterFlush()
                    return false
                }
            } else {
                try grpc.receive(bytes)
            }
            return true
        } catch let error as TLSError {
            // The TLS engine is failed for good: send its alert, nothing more.
            // Debug per connection (any peer can cause it), counted for the
            // operator: an expired certificate shows as every handshake failing.
            loop.logger.debug("TLS failed; closing", metadata: ["peer": "\(peer)", "reason": "\(error)"])
            Counter(label: "billing_tls_failures_total",
                    dimensions: [("stage", tls?.isHandshakeComplete == true ? "established" : "handshake")]).increment()
            tls?.drainCiphertext(into: &output)
            writePending()
            close()
            return false
        } catch {
            // The peer broke HTTP/2: send what is pending (a GOAWAY) and close.
            loop.logger.debug("closing connection", metadata: ["peer": "\(peer)", "reason": "\(error)"])
            endAfterFlush()
            return false
        }
    }

    private func endAfterFlush() {
        flush(closeAfter: true)
    }

    var pendingOutputCount: Int { output.count - outputOffset }

    func flush() {
        flush(closeAfter: false)
    }

    private func flush(closeAfter: Bool) {
        guard !isClosed else { return }
        // Frames are taken from nghttp2 only while fewer than
        // `maxPendingOutputBytes` wait for the socket: the rest wait in
        // nghttp2, where the answers' budget (RESPONSES_NOT_READ) counts
        // their bodies. (Session 29: everything was taken, so a client that
        // opened its flow-control windows wide and read nothing had every
        // answer moved here, past any budget — ~300 MiB from 400 calls.)
        // Taken again as the socket takes what waits: a writable socket
        // raises no new EPOLLOUT edge.
        let maxPending = server.configuration.maxPendingOutputBytes
        while true {
            let budget = maxPending - pendingOutputCount
            let asked = budget > 0
            var more = false
            do {
                if let tls {
                    if asked { more = try grpc.drainOutput(into: &plaintextOut, upTo: budget) }
                    if !plaintextOut.isEmpty { try tls.writePlaintext(plaintextOut, drainingInto: &output) }
                    tls.drainCiphertext(into: &output)
                    // Encrypted: emptied now, capacity past 256 KiB given back (as `output`'s is).
                    plaintextOut.removeAll(keepingCapacity: plaintextOut.capacity <= 256 * 1024)
                } else if asked {
                    more = try grpc.drainOutput(into: &output, upTo: output.count + budget)
                }
            } catch {
                loop.logger.debug("output failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
                close()
                return
            }
            writePending()
            if isClosed { return }
            // Again while nghttp2 may hold more and the socket took what
            // waited: stopped at the budget, or not asked at all because
            // the output was full (a diff review: the socket then took all
            // of it, no EPOLLOUT edge was to come, and the answers left in
            // nghttp2 waited for the peer's next frame — 30 s, then reset).
            // An EAGAIN leaves output pending, and brings an edge.
            guard more || !asked, pendingOutputCount < maxPending else { break }
        }
        // Once the peer has finished sending, no call left is the end too (a
        // stream it began and never finished keeps HTTP/2 "active").
        let done = !grpc.isActive || (inputClosed && grpc.openCallCount == 0)
        if closeAfter || (done && pendingOutputCount == 0) {
            // TLS ends with close_notify: the peer can tell the end from a
            // cut connection (truncation). Nothing after it is awaited.
            if let tls {
                tls.shutdown()
                tls.drainCiphertext(into: &output)
                writePending()
                if isClosed { return }
            }
            close()
            return
        }
        if readPaused && pendingOutputCount <= server.configuration.maxPendingOutputBytes / 2 {
            readPaused = false
            onReadable()
        }
    }

    private func writePending() {
        while pendingOutputCount > 0 {
            let written = output.withUnsafeBytes { bytes in
                // MSG_NOSIGNAL: a peer that closed gets EPIPE here, never SIGPIPE for the process.
                send(fd, bytes.baseAddress! + outputOffset, pendingOutputCount, Int32(MSG_NOSIGNAL))
            }
            if written > 0 {
                outputOffset += written
            } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                // What was sent is given back once it is most of the buffer
                // (session 29: kept until everything was sent, so a client
                // that always left some unread had the connection hold every
                // byte it was ever sent).
                if outputOffset >= 64 * 1024 && outputOffset >= output.count / 2 {
                    output.removeFirst(outputOffset)
                    outputOffset = 0
                }
                return  // EPOLLOUT (edge-triggered) marks us dirty when writable
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                close()
                return
            }
        }
        output.removeAll(keepingCapacity: output.capacity <= 256 * 1024)
        outputOffset = 0
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        grpc.close()
        loop.remove(self)
        Glibc.close(fd)
        server.connectionClosed()
    }
}
