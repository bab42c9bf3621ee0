public import BillingCore
public import BillingProto

/// Plan terms in the journal: the terms in effect change only through a
/// `PlansConfigured` entry, so replay never prices the past with today's file.
extension LedgerState {
    public static func journalPlans(_ plans: PlanCatalog, graceSeconds: Int64? = nil, actor: String) -> Billing_Journal_V1_PlansConfigured {
        var configured = Billing_Journal_V1_PlansConfigured()
        if let graceSeconds { configured.graceSeconds = graceSeconds }
        configured.free = terms(plans.free)
        configured.pro = terms(plans.pro)
        configured.enterprise = terms(plans.enterprise)
        configured.trialDays = Int32(plans.trialDays)
        configured.trialPlan = plans.trialPlan.rawValue
        configured.actor = actor
        return configured
    }

    static func terms(_ terms: PlanTerms) -> Billing_Journal_V1_PlanTermsState {
        var state = Billing_Journal_V1_PlanTermsState()
        state.displayName = terms.displayName
        state.monthlyPriceMicros = terms.monthlyPrice.micros
        if let quota = terms.runQuota { state.runQuota = quota }
        if let workspaces = terms.workspaceLimit { state.maxWorkspaces = Int64(workspaces) }
        state.support = terms.support.rawValue
        state.integrations = terms.integrations
        state.accruesOverage = terms.accruesOverage
        return state
    }

    /// The catalog a `PlansConfigured` describes, or nil if it is not one.
    static func plans(_ configured: Billing_Journal_V1_PlansConfigured) -> PlanCatalog? {
        guard let free = terms(configured.free), let pro = terms(configured.pro), let enterprise = terms(configured.enterprise),
              configured.trialDays > 0, let trialPlan = Plan(rawValue: configured.trialPlan)
        else { return nil }
        return PlanCatalog(free: free, pro: pro, enterprise: enterprise, trialDays: Int(configured.trialDays), trialPlan: trialPlan)
    }

    static func terms(_ state: Billing_Journal_V1_PlanTermsState) -> PlanTerms? {
        guard state.monthlyPriceMicros >= 0, let support = SupportLevel(rawValue: state.support) else { return nil }
        guard !state.hasMaxWorkspaces || (1...Int64(Int32.max)).contains(state.maxWorkspaces) else { return nil }
        return PlanTerms(
            displayName: state.displayName, monthlyPrice: Money(micros: state.monthlyPriceMicros),
            runQuota: state.hasRunQuota ? state.runQuota : nil,
            workspaceLimit: state.hasMaxWorkspaces ? Int(state.maxWorkspaces) : nil,
            support: support, integrations: state.integrations, accruesOverage: state.accruesOverage)
    }
}
