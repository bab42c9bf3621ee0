public import HTTP2
public import TLS

/// Settings shared by every connection of one run.
public struct LoadPlan: Sendable {
    public let host: String
    public let port: UInt16
    public let tls: TLSContext?
    public let authorization: [HTTP2Header]
    /// Calls in flight per connection at most.
    public let streams: Int
    /// The RPCs to pick from, each repeated as often as its weight.
    public let mix: [LoadRPC]
    public let batchSize: Int
    public let accounts: [String]
    public let agents: Int
    public let runID: String
    /// The time bound, on the `monotonicNow()` clock: no call starts at or after it.
    public let deadlineNanos: UInt64
    /// Nanoseconds between sends on one connection; 0 = as fast as possible.
    public let intervalNanos: UInt64

    public init(host: String, port: UInt16, tls: TLSContext?, authorization: [HTTP2Header], streams: Int,
                mix: [LoadRPC], batchSize: Int, accounts: [String], agents: Int, runID: String,
                deadlineNanos: UInt64, intervalNanos: UInt64) {
        precondition(streams > 0 && !mix.isEmpty && batchSize > 0 && !accounts.isEmpty && agents > 0)
        self.host = host
        self.port = port
        self.tls = tls
        self.authorization = authorization
        self.streams = streams
        self.mix = mix
        self.batchSize = batchSize
        self.accounts = accounts
        self.agents = agents
        self.runID = runID
        self.deadlineNanos = deadlineNanos
        self.intervalNanos = intervalNanos
    }
}
