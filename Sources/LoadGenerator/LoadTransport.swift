import Client
package import HTTP2

/// A call the server answered, as the worker counts it.
package struct FinishedCall: Sendable {
    package let streamID: Int32
    /// grpc-status; -1 when the stream ended without one (reset, HTTP error).
    package let status: Int
    /// The serialized response message, empty on error.
    package let response: [UInt8]
    /// `grpc-status-details-bin`, undecoded base64.
    package let details: String?

    package init(streamID: Int32, status: Int, response: [UInt8], details: String?) {
        self.streamID = streamID
        self.status = status
        self.response = response
        self.details = details
    }
}

/// What a worker needs of its connection: `GRPCClientConnection` over a
/// socket, or a simulated server with a fake clock in tests.
package protocol LoadTransport: AnyObject {
    /// Queues a unary call; returns its stream id.
    func start(path: String, message: [UInt8], metadata: [HTTP2Header]) throws -> Int32
    /// Writes everything queued.
    func flush() throws
    /// Waits up to `waitingMillis` for answers; returns the calls that finished.
    func finishedCalls(waitingMillis: Int32) throws -> [FinishedCall]
}

extension GRPCClientConnection: LoadTransport {
    package func finishedCalls(waitingMillis: Int32) throws -> [FinishedCall] {
        try poll(timeoutMillis: waitingMillis).map {
            FinishedCall(streamID: $0.streamID, status: $0.status, response: $0.response, details: $0.details)
        }
    }
}
