import BillingCore
import TLS
import Testing

/// One engine and what it has produced so far.
struct Side {
    let engine: TLSEngine
    var plaintext: [UInt8] = []
    var state = TLSEngine.ReadState.handshaking
    var error: TLSError?

    /// Feeds `bytes` (in pieces when `random` is set, up to `maxPiece`
    /// bytes), reading plaintext after each piece. Stops at the first error.
    mutating func receive(_ bytes: [UInt8], random: inout SplitMix64?, maxPiece: Int) {
        var offset = 0
        while offset < bytes.count, error == nil {
            let remaining = bytes.count - offset
            var size = remaining
            if random != nil { size = Int.random(in: 1...min(remaining, maxPiece), using: &random!) }
            bytes.withUnsafeBytes { engine.receiveCiphertext(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + size])) }
            offset += size
            do {
                state = try engine.readPlaintext(into: &plaintext)
            } catch let failure as TLSError {
                error = failure
            } catch {
                Issue.record("readPlaintext threw a non-TLSError: \(error)")
            }
        }
    }
}

/// A client engine and a server engine trading bytes in memory.
struct EnginePair {
    var server: Side
    var client: Side
    /// When set, every transfer is cut into random pieces.
    var random: SplitMix64?
    var maxPiece = 20_000

    init(server: TLSContext, client: TLSContext, seed: UInt64? = nil) throws {
        self.server = Side(engine: try TLSEngine(context: server))
        self.client = Side(engine: try TLSEngine(context: client))
        self.random = seed.map(SplitMix64.init(seed:))
    }

    /// Moves bytes both ways until neither side has anything to send,
    /// including the alert a failing side leaves for its peer.
    mutating func pump() {
        for _ in 0..<1000 {
            var toServer: [UInt8] = []
            client.engine.drainCiphertext(into: &toServer)
            var toClient: [UInt8] = []
            server.engine.drainCiphertext(into: &toClient)
            if toServer.isEmpty && toClient.isEmpty { return }
            server.receive(toServer, random: &random, maxPiece: maxPiece)
            client.receive(toClient, random: &random, maxPiece: maxPiece)
        }
        Issue.record("pump did not settle")
    }

    var isEstablished: Bool {
        server.error == nil && client.error == nil
            && server.engine.isHandshakeComplete && client.engine.isHandshakeComplete
    }
}
