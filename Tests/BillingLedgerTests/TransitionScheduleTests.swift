@testable import BillingLedger
import BillingCore
import Testing

/// The clock's schedule against a scan of every account, under random
/// reschedules: the same next account, time and tie-break.
@Suite struct TransitionScheduleTests {
    @Test(arguments: [1, 2, 3, 4])
    func earliestIsWhatAScanFinds(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var schedule = TransitionSchedule()
        var truth: [String: Int64] = [:]
        func scan(upTo limit: Int64) -> (String, Int64)? {
            truth.filter { $0.value <= limit }.min { ($0.value, $0.key) < ($1.value, $1.key) }.map { ($0.key, $0.value) }
        }
        for step in 0..<20_000 {
            let id = "acct-\(random.next() % 300)"
            switch random.next() % 10 {
            case 0..<6:
                let at = Int64(random.next() % 1_000)  // many ties
                schedule.schedule(id, at: at)
                truth[id] = at
            case 6:
                schedule.remove(id)
                truth[id] = nil
            default:
                let limit = Int64(random.next() % 1_100)
                let expected = scan(upTo: limit)
                let found = schedule.earliest(upTo: limit)
                #expect(found?.accountID == expected?.0 && found?.at == expected?.1, "seed \(seed), step \(step)")
                // Passing over a few accounts (those that failed in a sweep)
                // finds the next one and leaves the schedule as it was.
                let skipping = Set((0..<Int(random.next() % 4)).map { _ in "acct-\(random.next() % 300)" })
                    .union(expected.map { [$0.0] } ?? [])
                let next = truth.filter { $0.value <= limit && !skipping.contains($0.key) }
                    .min { ($0.value, $0.key) < ($1.value, $1.key) }
                let foundNext = schedule.earliest(upTo: limit, skipping: skipping)
                #expect(foundNext?.accountID == next?.key && foundNext?.at == next?.value, "seed \(seed), step \(step)")
                let again = schedule.earliest(upTo: limit)
                #expect(again?.accountID == expected?.0 && again?.at == expected?.1, "seed \(seed), step \(step)")
            }
        }
        #expect(schedule.dueAt == truth)
    }

    @Test func owedInvoicesComeAndGo() {
        var schedule = TransitionSchedule()
        schedule.setOwed(3, true)
        schedule.setOwed(1, true)
        schedule.setOwed(3, false)
        schedule.setOwed(2, false)
        #expect(schedule.owedInvoices == [1])
    }
}
