/// `grpc-timeout`: 1 to 8 ASCII digits then a unit (H, M, S, m, u, n).
/// Returns nanoseconds (saturating), or nil when the value is malformed.
public func parseGRPCTimeout(_ value: String) -> UInt64? {
    let utf8 = Array(value.utf8)
    guard utf8.count >= 2, utf8.count <= 9, let unit = utf8.last else { return nil }
    var amount: UInt64 = 0
    for byte in utf8.dropLast() {
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        amount = amount * 10 + UInt64(byte - UInt8(ascii: "0"))
    }
    let nanosPerUnit: UInt64
    switch unit {
    case UInt8(ascii: "H"): nanosPerUnit = 3_600_000_000_000
    case UInt8(ascii: "M"): nanosPerUnit = 60_000_000_000
    case UInt8(ascii: "S"): nanosPerUnit = 1_000_000_000
    case UInt8(ascii: "m"): nanosPerUnit = 1_000_000
    case UInt8(ascii: "u"): nanosPerUnit = 1_000
    case UInt8(ascii: "n"): nanosPerUnit = 1
    default: return nil
    }
    let (product, overflow) = amount.multipliedReportingOverflow(by: nanosPerUnit)
    return overflow ? UInt64.max : product
}
