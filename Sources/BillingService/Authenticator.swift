public import BillingAuth
public import BillingLedger
import GRPC

/// Turns a call's `authorization` metadata into a principal and checks it
/// against a method's access rule. Every refusal is UNAUTHENTICATED (who are
/// you?), PERMISSION_DENIED (not allowed) or NOT_FOUND (another account's
/// id, so that existence does not leak); messages never echo a credential.
public final class Authenticator: Sendable {
    let keyRing: KeyRing
    /// Checks keys against `keyRing`, remembering the ones that pass.
    let apiKeys = ApiKeyVerifier()
    /// Parsed authorization headers (a caller repeats its header every call).
    let credentials = BearerCredentialCache()
    let jwt: JWTVerifier?
    let clock: any LedgerClock

    /// `jwt` nil: user tokens are refused (service keys only).
    public init(keyRing: KeyRing, jwt: JWTVerifier?, clock: any LedgerClock) {
        self.keyRing = keyRing
        self.jwt = jwt
        self.clock = clock
    }

    static let readPermission = "billing:read"

    /// The caller of `context`. More than one `authorization` field is
    /// refused: a proxy and this server must not disagree on who calls.
    func principal(_ context: GRPCCallContext) throws(GRPCStatus) -> Principal {
        guard context.metadataCount("authorization") <= 1 else {
            throw GRPCStatus(.unauthenticated, "more than one authorization header", reason: "MALFORMED_CREDENTIALS")
        }
        return try principal(context.metadata("authorization"))
    }

    func principal(_ authorization: String?) throws(GRPCStatus) -> Principal {
        let credential: Credential
        switch credentials.parse(authorizationHeader: authorization) {
        case .success(let parsed): credential = parsed
        case .failure(.missing):
            throw GRPCStatus(.unauthenticated, "missing authorization: Bearer <token>", reason: "MISSING_CREDENTIALS")
        case .failure(let error):
            throw GRPCStatus(.unauthenticated, "malformed authorization header: \(error.message)", reason: "MALFORMED_CREDENTIALS")
        }
        let now = clock.nowMicros() / 1_000_000
        switch credential {
        case .apiKey(let keyID, let token):
            do {
                return try apiKeys.verify(keyID: keyID, token: token, nowUnix: now, in: KeyRingDirectory(keyRing: keyRing))
            } catch {
                switch error {
                case .unknown: throw GRPCStatus(.unauthenticated, "unknown API key", reason: "INVALID_API_KEY")
                case .revoked: throw GRPCStatus(.unauthenticated, "API key \(keyID) was revoked", reason: "API_KEY_REVOKED")
                case .expired: throw GRPCStatus(.unauthenticated, "API key \(keyID) expired", reason: "API_KEY_EXPIRED")
                }
            }
        case .jwt(let token):
            guard let jwt else {
                throw GRPCStatus(.unauthenticated, "user tokens are not accepted by this server", reason: "INVALID_TOKEN")
            }
            do {
                let claims = try jwt.verify(token, nowUnix: now)
                return .user(userID: claims.userID, accountID: claims.accountID, role: claims.role,
                             permissions: claims.permissions)
            } catch {
                throw GRPCStatus(.unauthenticated, "invalid token: \(error.message)", reason: "INVALID_TOKEN")
            }
        }
    }

    /// The checks no request is needed for, made before it is decoded: a
    /// service key's scopes (they do not depend on the account) and a user
    /// on a method for service keys only. A caller without the right is
    /// refused before the server spends anything on its message (up to
    /// 4 MiB), and hears PERMISSION_DENIED, not a decoding error. A user's
    /// role on a billing method is checked once the request names its
    /// account (`authorize`): another account is NOT_FOUND first.
    /// Returns whether that is all there is to check (a service key).
    func authorizeBeforeDecoding(_ principal: Principal, _ access: Access) throws(GRPCStatus) -> Bool {
        switch (principal, access) {
        case (.service, _), (.user, .service):  // (a user here is refused)
            try authorize(principal, access, accountID: nil)
            return true
        case (.user, .read), (.user, .act), (.user, .member):
            return false
        }
    }

    func authorize(_ principal: Principal, _ access: Access, accountID: String?) throws(GRPCStatus) {
        switch (principal, access) {
        case (.service(let keyID, let scopes), .service(let scope)),
             (.service(let keyID, let scopes), .read(let scope)),
             (.service(let keyID, let scopes), .act(let scope)),
             (.service(let keyID, let scopes), .member(let scope)):
            guard scopes.contains(scope) else {
                throw GRPCStatus(.permissionDenied, "API key \(keyID) lacks scope \(scope.rawValue)", reason: "MISSING_SCOPE",
                                 metadata: ["scope": scope.rawValue])
            }
        case (.user, .service):
            throw GRPCStatus(.permissionDenied, "this method is for service credentials only", reason: "SERVICE_ONLY")
        case (.user(_, let ownAccount, _, _), .read):
            try Self.sameAccount(ownAccount, accountID)
            guard Self.mayReadBilling(principal) else {
                throw GRPCStatus(.permissionDenied, "billing is visible to Owners, Admins and billing:read only",
                                 reason: "BILLING_READ_REQUIRED")
            }
        case (.user(_, let ownAccount, _, _), .member):
            try Self.sameAccount(ownAccount, accountID)
        case (.user(_, let ownAccount, let role, _), .act):
            try Self.sameAccount(ownAccount, accountID)
            guard role == .owner || role == .admin else {
                throw GRPCStatus(.permissionDenied, "only an Owner or Admin may change billing", reason: "BILLING_ADMIN_REQUIRED")
            }
        }
    }

    /// Whether `principal` may read billing (a service key's scope is
    /// checked apart): an Owner, an Admin, or a user with `billing:read`.
    static func mayReadBilling(_ principal: Principal) -> Bool {
        guard case .user(_, _, let role, let permissions) = principal else { return true }
        return role == .owner || role == .admin || permissions.contains(readPermission)
    }

    /// A user asking about another account is told it does not exist.
    /// Compared byte for byte: Swift's `==` equates canonically equivalent
    /// texts ("café" composed and decomposed), which the ledger's hashes,
    /// SQLite and the journal tell apart.
    static func sameAccount(_ own: String, _ requested: String?) throws(GRPCStatus) {
        guard let requested, requested.utf8.elementsEqual(own.utf8) else {
            throw GRPCStatus(.notFound, "account \(GRPCStatus.cut(requested ?? "", to: 64)) does not exist", reason: "ACCOUNT_NOT_FOUND")
        }
    }
}

/// The ledger's key ring as the API key verifier reads it. Every change to
/// the keys goes through `KeyRing.replace`, which moves the generation.
struct KeyRingDirectory: ApiKeyDirectory {
    let keyRing: KeyRing

    var generation: UInt64 { keyRing.generation }

    func storedKey(_ keyID: String) -> StoredApiKey? {
        keyRing.key(keyID).map { key in
            StoredApiKey(hash: key.hash, scopes: key.scopes, expiresUnix: key.expiresUnix, revokedUnix: key.revokedUnix)
        }
    }
}
