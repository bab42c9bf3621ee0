/// An invoice whose payment failed and that is not paid yet.
public struct PastDueInvoice: Sendable, Hashable {
    /// The invoice number the shell issued.
    public let number: Int64
    /// Unix seconds of its first failed payment: its grace period starts here.
    public let since: Int64

    public init(number: Int64, since: Int64) {
        self.number = number
        self.since = since
    }
}
