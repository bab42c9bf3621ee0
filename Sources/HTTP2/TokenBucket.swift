/// A rate limiter counted in whole events. Time comes in as an argument
/// (nanoseconds from any monotonic origin) so tests control it.
struct TokenBucket {
    private let burst: Int
    private let perSecond: Int
    private var tokens: Int
    private var lastRefillNanos: UInt64?

    init(burst: Int, perSecond: Int) {
        precondition(burst > 0 && perSecond >= 0)
        self.burst = burst
        self.perSecond = perSecond
        self.tokens = burst
    }

    /// Takes one token; false when the bucket is empty.
    mutating func take(now: UInt64) -> Bool {
        if let last = lastRefillNanos, now > last, perSecond > 0 {
            let nanosPerToken = 1_000_000_000 / UInt64(perSecond)
            let earned = (now - last) / max(nanosPerToken, 1)
            if earned > 0 {
                tokens = Int(min(UInt64(burst), UInt64(tokens) + earned))
                lastRefillNanos = last + earned * nanosPerToken
            }
        } else if lastRefillNanos == nil {
            lastRefillNanos = now
        }
        guard tokens > 0 else { return false }
        tokens -= 1
        return true
    }
}
