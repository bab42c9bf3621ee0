import BillingCore

/// Field values that exercise the protobuf wire format's edges, for the
/// hand-written encoders and decoder: empty, NUL, quotes, two- to
/// four-byte UTF-8; zero, one-byte, negative (ten-byte) and largest varints.
extension SplitMix64 {
    /// Up to `3 × maxRun` characters (often none).
    mutating func wireText(maxRun: Int = 60) -> String {
        let alphabet = Array("ab-_09ü口🧾\u{0}\"")
        let length = next(below: 4) * next(below: maxRun)
        return String((0..<length).map { _ in alphabet[next(below: alphabet.count)] })
    }

    mutating func wireNumber() -> Int64 {
        switch next(below: 5) {
        case 0: 0
        case 1: Int64(next(below: 128))
        case 2: -Int64(next(below: 1_000_000))
        case 3: Int64.max - Int64(next(below: 2))
        default: Int64(bitPattern: next())
        }
    }
}
