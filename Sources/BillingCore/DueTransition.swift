/// A time-driven transition of an account and when it is due.
public enum DueTransition: Sendable, Hashable {
    case trialEnd(at: Int64)
    case graceEnd(at: Int64)
    case periodEnd(BillingPeriod)

    /// Unix seconds at which it is due.
    public var at: Int64 {
        switch self {
        case .trialEnd(let at), .graceEnd(let at): at
        case .periodEnd(let period): period.end
        }
    }

    /// The event to apply, at `at`. `overage` is the closed period's usage
    /// that credits did not cover (the ledger knows it); `trialContinues`,
    /// whether a trial's end starts the subscription without a payment
    /// method (`AccountLifecycle.trialEndContinuesWithoutPaymentMethod`).
    /// Each transition ignores what is not its own.
    public func event(overage: Money = .zero, trialContinues: Bool = false) -> AccountEvent {
        switch self {
        case .trialEnd: .trialEnded(continuesWithoutPaymentMethod: trialContinues)
        case .graceEnd: .graceExpired
        case .periodEnd(let period): .periodEnded(period, overage: overage)
        }
    }

    /// Which goes first when two are due at the same second: the trial's end
    /// (it restarts the periods), then grace, then the period's end.
    var rank: Int {
        switch self {
        case .trialEnd: 0
        case .graceEnd: 1
        case .periodEnd: 2
        }
    }
}
