/// Display strings for invoices and traces, computed with integers only.
extension Money {
    public enum DisplayPrecision: Sendable {
        /// All six decimals: "$1,234.567890".
        case micros
        /// Rounded half-up (away from zero) to the cent: "$1,234.57".
        case cents
        /// At least two decimals, further ones only when not zero:
        /// "$12.34", "$1,234.5678", "$0.000001".
        case significant
    }

    /// "$1,234.567890", "-$0.50"; grouping with commas, no locale.
    public func formatted(_ precision: DisplayPrecision = .micros) -> String {
        // `magnitude` is a UInt64, so Int64.min formats without trapping.
        let magnitude = micros.magnitude
        let dollars: UInt64
        var fraction: String
        switch precision {
        case .micros, .significant:
            dollars = magnitude / 1_000_000
            fraction = Money.zeroPadded(magnitude % 1_000_000, width: 6)
            if precision == .significant {
                while fraction.count > 2, fraction.last == "0" { fraction.removeLast() }
            }
        case .cents:
            // At most 2^63 + 5,000: no UInt64 overflow.
            let cents = (magnitude + 5_000) / 10_000
            dollars = cents / 100
            fraction = Money.zeroPadded(cents % 100, width: 2)
        }
        let isZero = dollars == 0 && fraction.allSatisfy { $0 == "0" }
        let sign = micros < 0 && !isZero ? "-" : ""
        return "\(sign)$\(Money.grouped(dollars)).\(fraction)"
    }

    private static func zeroPadded(_ value: UInt64, width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// Thousands separated by commas: 1234567 → "1,234,567".
    private static func grouped(_ value: UInt64) -> String {
        let digits = Array(String(value))
        var result = ""
        result.reserveCapacity(digits.count + digits.count / 3)
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(digit)
        }
        return result
    }
}

extension Money: CustomStringConvertible {
    public var description: String { formatted(.micros) }
}
