/// The terms of every plan and of the trial: configuration, with defaults
/// from the product design (DESIGN.md "Plans", "Trial").
public struct PlanCatalog: Sendable, Hashable {
    public var free: PlanTerms
    public var pro: PlanTerms
    public var enterprise: PlanTerms
    /// Length of the trial a new account starts with.
    public var trialDays: Int
    /// The plan a trial runs on.
    public var trialPlan: Plan

    public init(free: PlanTerms, pro: PlanTerms, enterprise: PlanTerms, trialDays: Int, trialPlan: Plan) {
        self.free = free
        self.pro = pro
        self.enterprise = enterprise
        self.trialDays = trialDays
        self.trialPlan = trialPlan
    }

    public subscript(plan: Plan) -> PlanTerms {
        switch plan {
        case .free: free
        case .pro: pro
        case .enterprise: enterprise
        }
    }

    /// Free: $0, 1 workspace, 200 runs a month, community support.
    /// Pro: $49/month, unlimited workspaces, 20,000 runs a month, email
    /// support, all integrations. Enterprise: contract terms (no price or
    /// quota until an operator sets them), dedicated support. 14-day Pro trial.
    public static let `default` = PlanCatalog(
        free: PlanTerms(
            displayName: "Free",
            monthlyPrice: .zero,
            runQuota: 200,
            workspaceLimit: 1,
            support: .community,
            integrations: "Core built-in integrations",
            accruesOverage: false),
        pro: PlanTerms(
            displayName: "Pro",
            monthlyPrice: Money(micros: 49 * Money.microsPerDollar),
            runQuota: 20_000,
            workspaceLimit: nil,
            support: .email,
            integrations: "All built-in integrations",
            accruesOverage: true),
        enterprise: PlanTerms(
            displayName: "Enterprise",
            monthlyPrice: .zero,
            runQuota: nil,
            workspaceLimit: nil,
            support: .dedicated,
            integrations: "All integrations, SSO with SCIM, on-prem and private cloud",
            accruesOverage: true),
        trialDays: 14,
        trialPlan: .pro)
}
