/// A small, fast, seeded pseudo-random generator (SplitMix64, Steele et al.
/// 2014): the same seed gives the same sequence on every machine, for
/// reproducible workloads (`billing load`) and seeded tests. Not for secrets.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// SplitMix64's output function: every input bit reaches every output
    /// bit (also a finalizer for hashes that must be stable across runs).
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` (modulo bias is negligible for small bounds).
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "an empty range has no value")
        return Int(next() % UInt64(bound))
    }
}
