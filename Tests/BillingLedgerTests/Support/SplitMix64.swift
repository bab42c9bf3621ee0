import BillingCore

/// The simulation's draws, on BillingCore's seeded generator.
extension SplitMix64 {
    mutating func chance(_ p: Double) -> Bool {
        p > 0 && Double.random(in: 0..<1, using: &self) < p
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }

    mutating func int64(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &self) }

    mutating func pick<T>(_ elements: [T]) -> T {
        precondition(!elements.isEmpty)
        return elements[int(0...elements.count - 1)]
    }
}
