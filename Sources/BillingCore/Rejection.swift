/// A business refusal of a `Debit` or `Quote`: data, not an exception
/// (TigerBeetle's result enums). The ledger returns one; the service turns it
/// into a gRPC status with `ErrorInfo.reason` in exactly one place.
///
/// Cases are declared, numbered and compared in order of precedence: when
/// several apply, the smallest wins. The raw value is stable (the journal may
/// store it); a new case takes a new number, never a reused one.
public enum Rejection: UInt8, Sendable, CaseIterable, Comparable {
    /// No account with that id.
    case unknownAccount = 1
    /// The idempotency key was used before with a different request.
    case idempotencyKeyReused = 2
    /// The trial ended without a payment method (or a grace period ran out):
    /// new runs are paused until the account is reactivated.
    case accountPaused = 3
    /// The plan allows fewer workspaces than this debit would use.
    case workspaceLimit = 4
    /// A new run over the plan's run quota for the current period.
    case runQuotaExceeded = 5
    /// Credits do not cover the debit and the plan does not accrue overage.
    case insufficientCredits = 6

    public static func < (lhs: Rejection, rhs: Rejection) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// The machine-readable `google.rpc.ErrorInfo.reason`.
    public var reason: String {
        switch self {
        case .unknownAccount: "ACCOUNT_NOT_FOUND"
        case .idempotencyKeyReused: "IDEMPOTENCY_KEY_REUSED"
        case .accountPaused: "ACCOUNT_PAUSED"
        case .workspaceLimit: "WORKSPACE_LIMIT"
        case .runQuotaExceeded: "RUN_QUOTA_EXCEEDED"
        case .insufficientCredits: "INSUFFICIENT_CREDITS"
        }
    }

    /// The rejection with that `reason`, e.g. when read back from storage.
    public init?(reason: String) {
        guard let match = Rejection.allCases.first(where: { $0.reason == reason }) else { return nil }
        self = match
    }

    public var code: StatusCode {
        switch self {
        case .unknownAccount: .notFound
        case .idempotencyKeyReused: .alreadyExists
        case .accountPaused, .workspaceLimit, .insufficientCredits: .failedPrecondition
        case .runQuotaExceeded: .resourceExhausted
        }
    }

    /// A message for people; callers branch on `reason`, never on this.
    public var message: String {
        switch self {
        case .unknownAccount:
            "account not found"
        case .idempotencyKeyReused:
            "idempotency key already used with a different request; use a new key for a new attempt"
        case .accountPaused:
            "new runs are paused: add a payment method or switch to the Free plan"
        case .workspaceLimit:
            "the plan's workspace limit is reached; upgrade to use more workspaces"
        case .runQuotaExceeded:
            "the plan's run quota for this billing period is used up"
        case .insufficientCredits:
            "credit balance does not cover this debit; purchase credits or upgrade"
        }
    }
}
