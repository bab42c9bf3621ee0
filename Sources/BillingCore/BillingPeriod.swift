/// Monthly billing periods anchored on an account's start, in UTC. A period
/// starts on the anchor's day of month and time of day; in months without that
/// day it starts on the month's last day (Jan 31 → Feb 28/29 → Mar 31).
public struct BillingPeriod: Sendable, Hashable {
    public let start: Int64
    public let end: Int64

    /// The period containing `now` for an account anchored at `anchor` (unix seconds).
    public static func containing(_ now: Int64, anchor: Int64) -> BillingPeriod {
        // The anchor's date and time of day once (every debit asks: it was
        // ~2 % of one, converting the anchor again for each candidate month).
        let origin = Origin(anchor)
        let nowCivil = CivilDate(unixSeconds: now)
        // Months elapsed, estimated then corrected: at most a step or two.
        var months = (nowCivil.year - origin.date.year) * 12 + (nowCivil.month - origin.date.month)
        months = max(months, 0)
        var start = origin.start(months: months)
        while months > 0 && start > now {
            months -= 1
            start = origin.start(months: months)
        }
        var end = origin.start(months: months + 1)
        while end <= now {
            months += 1
            start = end
            end = origin.start(months: months + 1)
        }
        return BillingPeriod(start: start, end: end)
    }

    /// Start of the period `months` after the anchor's.
    public static func periodStart(anchor: Int64, months: Int) -> Int64 {
        Origin(anchor).start(months: months)
    }

    /// An anchor as a date and a second of its day.
    private struct Origin {
        let date: CivilDate
        let secondOfDay: Int64

        init(_ anchor: Int64) {
            date = CivilDate(unixSeconds: anchor)
            secondOfDay = anchor - CivilDate.daysFromCivil(year: date.year, month: date.month, day: date.day) * 86_400
        }

        /// Start of the period `months` after this one's.
        func start(months: Int) -> Int64 {
            let monthIndex = date.month - 1 + months
            let year = date.year + Int(floorDivide(Int64(monthIndex), 12))
            let month = Int(floorModulo(Int64(monthIndex), 12)) + 1
            let day = min(date.day, CivilDate.daysInMonth(year: year, month: month))
            return CivilDate.daysFromCivil(year: year, month: month, day: day) * 86_400 + secondOfDay
        }
    }
}

/// A proleptic Gregorian date in UTC (Howard Hinnant's civil-from-days).
public struct CivilDate: Sendable, Hashable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public init(unixSeconds: Int64) {
        self.init(daysSinceEpoch: floorDivide(unixSeconds, 86_400))
    }

    public init(daysSinceEpoch days: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        self.init(year: Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0)), month: Int(month), day: Int(day))
    }

    /// Days since 1970-01-01 of this date.
    public var daysSinceEpoch: Int64 { Self.daysFromCivil(year: year, month: month, day: day) }

    /// "YYYY-MM-DD".
    public var description: String {
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// Division rounding toward negative infinity (days before 1970 stay whole days).
public func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

func floorModulo(_ a: Int64, _ b: Int64) -> Int64 {
    a - floorDivide(a, b) * b
}
