@testable import HTTP2
import Testing

@Test func tokenBucketAllowsBurstThenRefillsAtRate() {
    var bucket = TokenBucket(burst: 3, perSecond: 2)
    func takes(_ count: Int, at now: UInt64) -> [Bool] {
        (0..<count).map { _ in bucket.take(now: now) }
    }
    #expect(takes(4, at: 0) == [true, true, true, false])
    #expect(takes(1, at: 400_000_000) == [false])
    #expect(takes(2, at: 500_000_000) == [true, false])  // one token per 0.5 s
    #expect(takes(4, at: 10_000_000_000) == [true, true, true, false])  // refill capped at the burst
}
