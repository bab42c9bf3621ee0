/// A downgrade waiting for the end of the current period (or of the trial):
/// shown as pending, cancellable until it applies.
public struct PendingPlanChange: Sendable, Hashable {
    public let plan: Plan
    /// Unix seconds at which the change applies.
    public let effectiveAt: Int64

    public init(plan: Plan, effectiveAt: Int64) {
        self.plan = plan
        self.effectiveAt = effectiveAt
    }
}
