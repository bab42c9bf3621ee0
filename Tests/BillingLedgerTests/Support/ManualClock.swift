import BillingCore
import BillingLedger
import Synchronization

/// A clock the test moves by hand; it never moves by itself.
final class ManualClock: LedgerClock {
    private let micros: Mutex<Int64>

    init(micros: Int64) { self.micros = Mutex(micros) }

    /// `year-month-day hour:minute` UTC.
    convenience init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0) {
        let seconds = CivilDate.daysFromCivil(year: year, month: month, day: day) * 86_400
            + Int64(hour) * 3_600 + Int64(minute) * 60
        self.init(micros: seconds * 1_000_000)
    }

    func nowMicros() -> Int64 { micros.withLock { $0 } }

    func advance(seconds: Int64) {
        precondition(seconds >= 0, "the ledger's clock only moves forward")
        micros.withLock { $0 += seconds * 1_000_000 }
    }

    /// A wall clock stepped back (NTP), which the ledger must ride out.
    func stepBack(seconds: Int64) {
        micros.withLock { $0 -= seconds * 1_000_000 }
    }
}
