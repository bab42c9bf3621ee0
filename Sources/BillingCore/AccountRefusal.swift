/// A refused account request: data, not an exception. Nothing changed. The
/// service turns it into a `FAILED_PRECONDITION` with `reason`.
public enum AccountRefusal: Error, Sendable, Hashable, CaseIterable {
    /// A customer asked for Enterprise: only an operator's contract sets it.
    case contactSales
    /// `CancelPendingChange` with no plan change pending.
    case noPendingChange
    /// A change to a paid plan (or keeping Pro after the trial) needs a
    /// payment method on file first.
    case paymentMethodRequired

    public var code: StatusCode { .failedPrecondition }

    /// The machine-readable `google.rpc.ErrorInfo.reason`.
    public var reason: String {
        switch self {
        case .contactSales: "CONTACT_SALES"
        case .noPendingChange: "NO_PENDING_CHANGE"
        case .paymentMethodRequired: "PAYMENT_METHOD_REQUIRED"
        }
    }

    public var message: String {
        switch self {
        case .contactSales: "Enterprise plans are set up by our sales team: contact sales to upgrade"
        case .noPendingChange: "there is no pending plan change to cancel"
        case .paymentMethodRequired: "add a payment method before switching to a paid plan"
        }
    }
}

extension AccountRefusal: CustomStringConvertible {
    public var description: String { message }
}
