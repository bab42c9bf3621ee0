/// The RPCs `billing load` can drive.
public enum LoadRPC: String, CaseIterable, Sendable {
    case debit, quote, batch, cost, usage

    /// The method's HTTP/2 `:path`.
    public var path: String {
        switch self {
        case .debit: "/billing.v1.Metering/Debit"
        case .quote: "/billing.v1.Metering/Quote"
        case .batch: "/billing.v1.Metering/DebitBatch"
        case .cost: "/billing.v1.Metering/GetExecutionCost"
        case .usage: "/billing.v1.Metering/GetUsage"
        }
    }
}
