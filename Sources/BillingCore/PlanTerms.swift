/// What a plan costs and allows: one row of the plan comparison table.
/// Enterprise terms here are the defaults an operator's contract overrides.
public struct PlanTerms: Sendable, Hashable {
    public var displayName: String
    /// Charged each monthly period (Enterprise: set by contract).
    public var monthlyPrice: Money
    /// New runs allowed per billing period; nil means no quota.
    public var runQuota: Int64?
    /// Workspaces an account may use; nil means unlimited.
    public var workspaceLimit: Int?
    public var support: SupportLevel
    /// Which integrations the plan includes, for the comparison table.
    public var integrations: String
    /// Whether a debit that credits do not cover goes on as metered usage on
    /// the next invoice (true) or is refused with INSUFFICIENT_CREDITS (false).
    /// A trial is always refused, whatever its plan says.
    public var accruesOverage: Bool

    public init(
        displayName: String,
        monthlyPrice: Money,
        runQuota: Int64?,
        workspaceLimit: Int?,
        support: SupportLevel,
        integrations: String,
        accruesOverage: Bool
    ) {
        self.displayName = displayName
        self.monthlyPrice = monthlyPrice
        self.runQuota = runQuota
        self.workspaceLimit = workspaceLimit
        self.support = support
        self.integrations = integrations
        self.accruesOverage = accruesOverage
    }
}
