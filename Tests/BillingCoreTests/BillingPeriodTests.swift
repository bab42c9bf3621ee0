import BillingCore
import Testing

/// `BillingPeriod.containing` against the definition walked month by month:
/// the period is [start(m), start(m + 1)) for the one m whose range holds
/// `now`, start(m) being the anchor's day (clamped to the month's last) and
/// time of day m months on.
@Suite struct BillingPeriodTests {
    @Test(arguments: [1, 2, 3, 4])
    func containingMatchesAMonthByMonthWalk(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        // Anchors near month ends (the 28th plus 0-3 days: 31sts, and 1st-3rds
        // after short months) at any time of day, 1970-2100.
        let monthEnds = (0..<200).map { _ in
            utc(Int.random(in: 1970...2100, using: &random), Int.random(in: 1...12, using: &random), 28)
                + Int64.random(in: 0..<4, using: &random) * day + Int64.random(in: 0..<day, using: &random)
        }
        let anywhere = (0..<200).map { _ in Int64.random(in: 0...utc(2100, 1, 1), using: &random) }
        for anchor in monthEnds + anywhere {
            let boundary = BillingPeriod.periodStart(anchor: anchor, months: Int.random(in: 0...360, using: &random))
            // From just before the anchor (the first period) to ~30 years after
            // it, and a period's first and previous second.
            let nows = (0..<20).map { _ in anchor + Int64.random(in: -day...(30 * 366 * day), using: &random) }
                + [boundary, boundary - 1]
            for now in nows {
                var months = 0
                while BillingPeriod.periodStart(anchor: anchor, months: months + 1) <= now { months += 1 }
                let expected = (BillingPeriod.periodStart(anchor: anchor, months: months),
                                BillingPeriod.periodStart(anchor: anchor, months: months + 1))
                let found = BillingPeriod.containing(now, anchor: anchor)
                #expect(found.start == expected.0 && found.end == expected.1, "anchor \(anchor), now \(now), seed \(seed)")
                if found.start != expected.0 || found.end != expected.1 { return }
            }
        }
    }

    @Test func periodStartsKeepTheAnchorsTimeOfDayAndClampToTheMonthsEnd() {
        let anchor = utc(2027, 1, 31) + 3_600 * 5 + 7  // 05:00:07 on Jan 31
        #expect(BillingPeriod.periodStart(anchor: anchor, months: 0) == anchor)
        #expect(BillingPeriod.periodStart(anchor: anchor, months: 1) == utc(2027, 2, 28) + 3_600 * 5 + 7)
        #expect(BillingPeriod.periodStart(anchor: anchor, months: 13) == utc(2028, 2, 29) + 3_600 * 5 + 7)
        #expect(BillingPeriod.periodStart(anchor: anchor, months: 2) == utc(2027, 3, 31) + 3_600 * 5 + 7)
    }
}
