import BillingCore
import Foundation
import Testing

@Suite struct PlanCatalogJSONTests {
    /// The repository's `config/plans.json`.
    static func shippedBytes() throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config/plans.json")
        return Array(try Data(contentsOf: url))
    }

    /// The shipped file is the built-in default: a server upgraded onto it
    /// journals no change of terms.
    @Test func theShippedFileIsTheDefault() throws {
        #expect(try PlanCatalog(json: try Self.shippedBytes()) == PlanCatalog.default)
    }

    static let valid = """
        {"trial_days": 7, "trial_plan": "pro", "plans": {
          "free": {"display_name": "Free", "monthly_price_micros": 0, "run_quota": 50, "max_workspaces": 2,
                   "support": "community", "integrations": "Core", "accrues_overage": false},
          "pro": {"display_name": "Pro", "monthly_price_micros": 99000000, "support": "email",
                  "integrations": "All", "accrues_overage": true},
          "enterprise": {"display_name": "Enterprise", "monthly_price_micros": 0, "support": "dedicated",
                         "integrations": "All", "accrues_overage": true}}}
        """

    @Test func readsEveryTerm() throws {
        let plans = try PlanCatalog(json: Self.valid)
        #expect(plans.trialDays == 7 && plans.trialPlan == .pro)
        #expect(plans.free.runQuota == 50 && plans.free.workspaceLimit == 2 && !plans.free.accruesOverage)
        #expect(plans.pro.monthlyPrice == Money(micros: 99_000_000))
        #expect(plans.pro.runQuota == nil && plans.pro.workspaceLimit == nil)
        #expect(plans.enterprise.support == .dedicated)
    }

    @Test(arguments: [
        ("\"run_quota\": 50", "\"run_qouta\": 50", "unknown field plans.free.run_qouta"),
        ("\"run_quota\": 50", "\"run_quota\": 0", "run_quota must be positive"),
        ("\"max_workspaces\": 2", "\"max_workspaces\": 0", "max_workspaces must be 1...2147483647"),
        // Past what the journal records (it refused such terms at start-up, as an internal error).
        ("\"max_workspaces\": 2", "\"max_workspaces\": 3000000000", "max_workspaces must be 1...2147483647"),
        ("\"monthly_price_micros\": 99000000", "\"monthly_price_micros\": -1", "monthly_price_micros is negative"),
        // Invoices charge whole cents.
        ("\"monthly_price_micros\": 99000000", "\"monthly_price_micros\": 99004000", "monthly_price_micros must be whole cents"),
        ("\"support\": \"email\"", "\"support\": \"phone\"", "support must be community, email or dedicated"),
        ("\"trial_days\": 7", "\"trial_days\": 0", "trial_days must be 1...365"),
        ("\"trial_plan\": \"pro\"", "\"trial_plan\": \"enterprise\"", "trial_plan must be"),
        ("\"monthly_price_micros\": 0, \"run_quota\"", "\"monthly_price_micros\": 100000000, \"run_quota\"", "must not cost more than"),
        ("\"trial_days\": 7", "\"trial_dayz\": 7", "unknown field trial_dayz"),
        ("\"enterprise\"", "\"platinum\"", "unknown plan \"platinum\""),
        ("\"monthly_price_micros\": 99000000", "\"monthly_price_micros\": 99.5", "malformed"),
    ])
    func refusesBadTerms(_ original: String, _ replacement: String, _ expected: String) {
        let text = Self.valid.replacingOccurrences(of: original, with: replacement)
        #expect(text != Self.valid, "the case does not change the document")
        do {
            _ = try PlanCatalog(json: text)
            Issue.record("accepted: \(replacement)")
        } catch {
            #expect(error.description.contains(expected), "\(error)")
        }
    }
}

extension PlanCatalog {
    init(json: String) throws(PlanCatalogError) { try self.init(json: Array(json.utf8)) }
}
