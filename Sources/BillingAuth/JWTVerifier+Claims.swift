import BillingCore
extension JWTVerifier {
    /// Longest `sub` or `account_id` accepted, in UTF-8 bytes.
    static let maxIdentifierBytes = 256

    /// Checks the signed claims: times first, then who issued the token and
    /// for whom, then who it is about.
    func validate(_ claims: [String: ClaimValue], nowUnix: Int64) throws(AuthError) -> UserClaims {
        let earliest = saturating(nowUnix.subtractingReportingOverflow(leewaySeconds), overflowTo: .min)
        let latest = saturating(nowUnix.addingReportingOverflow(leewaySeconds), overflowTo: .max)

        guard let exp = try integer(claims, "exp") else { throw .invalidClaims("exp is required") }
        guard exp > earliest else { throw .expired }
        let nbf = try integer(claims, "nbf")
        if let nbf, nbf > latest { throw .notYetValid }
        if let iat = try integer(claims, "iat"), iat > latest { throw .notYetValid }

        guard case .string(let iss)? = claims["iss"], iss == issuer else { throw .wrongIssuer }
        switch claims["aud"] {
        case .string(let aud)? where aud == audience: break
        case .strings(let auds)? where auds.contains(audience): break
        default: throw .wrongAudience
        }

        let userID = try identifier(claims, "sub")
        let accountID = try identifier(claims, "account_id")
        guard case .string(let roleName)? = claims["role"], !roleName.isEmpty else { throw .invalidClaims("role is required") }
        // A role other than the four built-in ones is one of the platform's
        // custom roles: it may read billing with `billing:read`, no more.
        let role = Role(claim: roleName) ?? .custom
        var permissions: Set<String> = []
        switch claims["permissions"] {
        case nil: break
        case .strings(let values)?: permissions = Set(values)
        default: throw .invalidClaims("permissions must be an array of strings")
        }

        return UserClaims(
            userID: userID, accountID: accountID, role: role, permissions: permissions,
            expiresAt: exp, notBefore: nbf)
    }

    /// A NumericDate claim: absent, or an integer (RFC 7519 §2 allows
    /// fractions; the platform never sends them, so we refuse them).
    private func integer(_ claims: [String: ClaimValue], _ name: String) throws(AuthError) -> Int64? {
        switch claims[name] {
        case nil: return nil
        case .integer(let value)?: return value
        default: throw .invalidClaims("\(name) must be an integer")
        }
    }

    /// A required identifier: a non-empty string, bounded, taken by the
    /// rules of a request's ids (`requireID`): no control or invisible
    /// characters (direction overrides, zero-width and line separators), no
    /// space at either end, Unicode NFC. It ends up in the audit log
    /// (`user:<sub>`, returned as is by `ListAuditLog`) and in queries;
    /// session 29: only C0/C1 controls were refused, so a `sub` could
    /// reorder the audit line it was shown in.
    private func identifier(_ claims: [String: ClaimValue], _ name: String) throws(AuthError) -> String {
        guard case .string(let value)? = claims[name], !value.isEmpty else { throw .invalidClaims("\(name) is required") }
        guard value.utf8.count <= Self.maxIdentifierBytes else { throw .invalidClaims("\(name) is too long") }
        guard value.idTextProblem == nil else {
            throw .invalidClaims("\(name) has control or invisible characters, a space at an end, or is not in Unicode NFC")
        }
        return value
    }

    private func saturating(_ result: (partialValue: Int64, overflow: Bool), overflowTo limit: Int64) -> Int64 {
        result.overflow ? limit : result.partialValue
    }
}
