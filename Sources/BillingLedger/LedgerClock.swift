import Foundation

/// Where the ledger gets the time: passed in, so tests and the test clock control it.
public protocol LedgerClock: Sendable {
    /// Microseconds since the Unix epoch, UTC.
    func nowMicros() -> Int64
}

public struct SystemClock: LedgerClock {
    public init() {}
    public func nowMicros() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }
}
