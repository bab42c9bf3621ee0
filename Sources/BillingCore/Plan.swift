/// A subscription plan. Ordered by tier: moving to a greater plan is an
/// upgrade (applies at once), to a lesser one a downgrade (at period end).
public enum Plan: String, Sendable, Hashable, CaseIterable, Comparable {
    case free, pro, enterprise

    private var tier: Int {
        switch self {
        case .free: 0
        case .pro: 1
        case .enterprise: 2
        }
    }

    public static func < (lhs: Plan, rhs: Plan) -> Bool {
        lhs.tier < rhs.tier
    }
}

public enum SupportLevel: String, Sendable, Hashable, CaseIterable {
    case community, email, dedicated
}
