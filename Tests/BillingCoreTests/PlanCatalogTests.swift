import BillingCore
import Testing

@Suite struct PlanCatalogTests {
    @Test func defaultsMatchTheDesign() {
        let plans = PlanCatalog.default
        #expect(plans[.free].monthlyPrice == .zero)
        #expect(plans[.free].runQuota == 200)
        #expect(plans[.free].workspaceLimit == 1)
        #expect(plans[.free].support == .community)
        #expect(plans[.free].accruesOverage == false)

        #expect(plans[.pro].monthlyPrice == Money(micros: 49_000_000))
        #expect(plans[.pro].runQuota == 20_000)
        #expect(plans[.pro].workspaceLimit == nil)
        #expect(plans[.pro].support == .email)
        #expect(plans[.pro].accruesOverage)

        #expect(plans[.enterprise].workspaceLimit == nil)
        #expect(plans[.enterprise].support == .dedicated)
        #expect(plans.trialDays == 14)
        #expect(plans.trialPlan == .pro)
    }

    @Test func termsAreConfigurable() {
        var plans = PlanCatalog.default
        plans.pro.runQuota = 50_000
        #expect(plans[.pro].runQuota == 50_000)
        #expect(PlanCatalog.default[.pro].runQuota == 20_000)
    }

    @Test func plansAreOrderedByTier() {
        #expect(Plan.free < .pro)
        #expect(Plan.pro < .enterprise)
        #expect(Plan.allCases.sorted() == [.free, .pro, .enterprise])
    }
}
