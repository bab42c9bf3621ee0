/// The send times of one connection at a fixed rate, as a pure function of
/// the call's number: call k (from 0) is due at start + k × interval. A
/// connection that fell behind (every stream busy) sends the calls it owes
/// as soon as streams free up, so the rate over the run holds.
public struct Pacer: Sendable, Equatable {
    public let startNanos: UInt64
    /// Nanoseconds between sends; 0: unpaced, every call is due at once.
    public let intervalNanos: UInt64

    public init(startNanos: UInt64, intervalNanos: UInt64) {
        self.startNanos = startNanos
        self.intervalNanos = intervalNanos
    }

    /// The interval that makes `connections` connections together send
    /// `rate` calls per second; 0 (unpaced) for rate 0. Truncated to the
    /// nanosecond, so the rate is at most 1 ns per interval too high.
    public static func intervalNanos(rate: Int, connections: Int) -> UInt64 {
        precondition(rate >= 0 && connections > 0, "rate \(rate), connections \(connections)")
        return rate == 0 ? 0 : UInt64(connections) * 1_000_000_000 / UInt64(rate)
    }

    public var isPaced: Bool { intervalNanos > 0 }

    /// When call `index` (from 0) is due.
    public func dueNanos(ofCall index: Int64) -> UInt64 {
        precondition(index >= 0)
        return startNanos + UInt64(index) * intervalNanos
    }

    /// Whether call `index` may start at `now`.
    public func isDue(call index: Int64, at now: UInt64) -> Bool {
        !isPaced || now >= dueNanos(ofCall: index)
    }
}
