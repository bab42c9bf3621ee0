#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif

/// Why a plans file could not be loaded; the message names the field.
public struct PlanCatalogError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// The plans file (`config/plans.json`, `serve --plans`): every plan's
/// display name, monthly price in micro-dollars, run quota and workspaces
/// (absent: unlimited), support level, integrations, whether uncovered usage
/// accrues as overage; the trial's length and plan. Unknown fields are
/// refused, so a misspelt one cannot silently drop a limit.
extension PlanCatalog {
    public init(json: [UInt8]) throws(PlanCatalogError) {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(json))
        } catch let error as PlanCatalogError {
            throw error
        } catch {
            throw PlanCatalogError("plans file is malformed: \(error)")
        }
        guard (1...365).contains(document.trialDays) else { throw PlanCatalogError("trial_days must be 1...365") }
        guard let trialPlan = Plan(rawValue: document.trialPlan), trialPlan != .enterprise else {
            throw PlanCatalogError("trial_plan must be \"free\" or \"pro\"")
        }
        var terms: [Plan: PlanTerms] = [:]
        for (name, entry) in document.plans {
            guard let plan = Plan(rawValue: name) else { throw PlanCatalogError("unknown plan \"\(name)\" in plans") }
            terms[plan] = try entry.terms(path: "plans.\(name)")
        }
        guard let free = terms[.free], let pro = terms[.pro], let enterprise = terms[.enterprise] else {
            throw PlanCatalogError("plans must define free, pro and enterprise")
        }
        guard free.monthlyPrice <= pro.monthlyPrice else {
            throw PlanCatalogError("plans.free must not cost more than plans.pro (an upgrade is charged the difference)")
        }
        self.init(free: free, pro: pro, enterprise: enterprise, trialDays: document.trialDays, trialPlan: trialPlan)
    }

    private struct Document: Decodable {
        let trialDays: Int
        let trialPlan: String
        let plans: [String: Entry]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case comment, trialDays = "trial_days", trialPlan = "trial_plan", plans
        }

        init(from decoder: any Decoder) throws {
            try PlanCatalogError.refuseUnknown(decoder, known: CodingKeys.allCases.map(\.rawValue), at: "")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            trialDays = try container.decode(Int.self, forKey: .trialDays)
            trialPlan = try container.decode(String.self, forKey: .trialPlan)
            plans = try container.decode([String: Entry].self, forKey: .plans)
        }
    }

    private struct Entry: Decodable {
        let displayName: String
        let monthlyPriceMicros: Int64
        let runQuota: Int64?
        let maxWorkspaces: Int?
        let support: String
        let integrations: String
        let accruesOverage: Bool

        enum CodingKeys: String, CodingKey, CaseIterable {
            case displayName = "display_name", monthlyPriceMicros = "monthly_price_micros", runQuota = "run_quota"
            case maxWorkspaces = "max_workspaces", support, integrations, accruesOverage = "accrues_overage"
        }

        init(from decoder: any Decoder) throws {
            let path = decoder.codingPath.map(\.stringValue).joined(separator: ".")
            try PlanCatalogError.refuseUnknown(decoder, known: CodingKeys.allCases.map(\.rawValue), at: path)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            displayName = try container.decode(String.self, forKey: .displayName)
            monthlyPriceMicros = try container.decode(Int64.self, forKey: .monthlyPriceMicros)
            runQuota = try container.decodeIfPresent(Int64.self, forKey: .runQuota)
            maxWorkspaces = try container.decodeIfPresent(Int.self, forKey: .maxWorkspaces)
            support = try container.decode(String.self, forKey: .support)
            integrations = try container.decode(String.self, forKey: .integrations)
            accruesOverage = try container.decode(Bool.self, forKey: .accruesOverage)
        }

        func terms(path: String) throws(PlanCatalogError) -> PlanTerms {
            guard (1...64).contains(displayName.count) else { throw PlanCatalogError("\(path).display_name must be 1-64 characters") }
            guard monthlyPriceMicros >= 0 else { throw PlanCatalogError("\(path).monthly_price_micros is negative") }
            // Invoices charge whole cents: a price between them would be listed at one amount and billed at another.
            guard Money(micros: monthlyPriceMicros).isWholeCents else {
                throw PlanCatalogError("\(path).monthly_price_micros must be whole cents (a multiple of 10000 micros)")
            }
            guard runQuota.map({ $0 > 0 }) ?? true else { throw PlanCatalogError("\(path).run_quota must be positive (omit it for no quota)") }
            guard maxWorkspaces.map({ (1...Int(Int32.max)).contains($0) }) ?? true else {
                throw PlanCatalogError("\(path).max_workspaces must be 1...2147483647 (omit it for unlimited)")
            }
            guard let level = SupportLevel(rawValue: support) else {
                throw PlanCatalogError("\(path).support must be community, email or dedicated")
            }
            guard integrations.count <= 200 else { throw PlanCatalogError("\(path).integrations is longer than 200 characters") }
            return PlanTerms(displayName: displayName, monthlyPrice: Money(micros: monthlyPriceMicros), runQuota: runQuota,
                             workspaceLimit: maxWorkspaces, support: level, integrations: integrations, accruesOverage: accruesOverage)
        }
    }
}

extension PlanCatalogError {
    /// Refuses any key of the object at `decoder` that is not `known`.
    static func refuseUnknown(_ decoder: any Decoder, known: [String], at path: String) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys where !known.contains(key.stringValue) {
            throw PlanCatalogError("unknown field \(path.isEmpty ? "" : path + ".")\(key.stringValue) in the plans file")
        }
    }

    struct AnyKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
