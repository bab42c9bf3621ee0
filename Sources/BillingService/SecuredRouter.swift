import BillingAuth
import BillingProto
import GRPC
import SwiftProtobuf
import Metrics

/// Requests that name the account they concern.
protocol AccountScoped {
    var accountID: String { get }
    /// Whether the account may be left out (then a user is checked as for
    /// their own account, a service key by its scopes alone).
    static var accountIsOptional: Bool { get }
}

extension AccountScoped {
    static var accountIsOptional: Bool { false }
}

extension Billing_V1_DebitRequest: AccountScoped {}
extension Billing_V1_QuoteRequest: AccountScoped {}
extension Billing_V1_GetDebitRequest: AccountScoped {}
extension Billing_V1_GetExecutionCostRequest: AccountScoped {}
extension Billing_V1_GetUsageRequest: AccountScoped {}
extension Billing_V1_CreateAccountRequest: AccountScoped {}
extension Billing_V1_GetAccountRequest: AccountScoped {}
extension Billing_V1_GetBannersRequest: AccountScoped {}
extension Billing_V1_ListPlansRequest: AccountScoped {
    /// The comparison table without an account is the plans themselves.
    static var accountIsOptional: Bool { true }
}
extension Billing_V1_ChangePlanRequest: AccountScoped {}
extension Billing_V1_CancelPendingChangeRequest: AccountScoped {}
extension Billing_V1_PurchaseCreditsRequest: AccountScoped {}
extension Billing_V1_SetPaymentMethodRequest: AccountScoped {}
extension Billing_V1_GetPaymentMethodRequest: AccountScoped {}
extension Billing_V1_ListChargesRequest: AccountScoped {}
extension Billing_V1_ListInvoicesRequest: AccountScoped {}
extension Billing_V1_GetInvoicePdfRequest: AccountScoped {}
extension Billing_V1_PayInvoiceRequest: AccountScoped {}
extension Billing_V1_GrantCreditsRequest: AccountScoped {}
extension Billing_V1_SetEnterpriseContractRequest: AccountScoped {}

/// A caller checked at a call's headers (`SecuredRouter.admitAtHeaders`):
/// who it is, and whether the rights that need no request settled the call
/// (a service key's scopes) or a user's role is still to be checked against
/// the account the request names. A class: the handler's cast is a class check.
/// With the key ring's generation and the second it was checked at: a
/// request arriving after either moved is checked again (`admit`) — a key
/// revoked, or expired, between a call's headers and its request (which may
/// come up to the request timeout later) still ran its handler.
final class AdmittedCaller: Sendable {
    let principal: Principal
    let decided: Bool
    let keyRingGeneration: UInt64
    let checkedAtUnix: Int64

    init(principal: Principal, decided: Bool, keyRingGeneration: UInt64, checkedAtUnix: Int64) {
        self.principal = principal
        self.decided = decided
        self.keyRingGeneration = keyRingGeneration
        self.checkedAtUnix = checkedAtUnix
    }
}

/// Registers billing methods behind authentication and the access table:
/// the handler runs only for an allowed principal, and receives it.
struct SecuredRouter {
    var router: GRPCRouter
    let authenticator: Authenticator

    mutating func register<Request: Message, Response: Message>(
        _ path: String, placement: GRPCHandlerPlacement = .pool,
        _ handler: @escaping @Sendable (Request, Principal) async throws -> Response
    ) {
        router.register(path: path, placement: placement, secured(path, handler))
        admitAtHeaders(path)
    }

    /// The caller's credentials and the rights that need no request, checked
    /// at the call's headers: refused there, the caller's request bytes are
    /// dropped as they arrive (an anonymous peer could otherwise hold 64 MiB
    /// a connection, and fill the server's request budget, for a request
    /// timeout at a time). The principal goes on to `admit`.
    private mutating func admitAtHeaders(_ path: String) {
        let access = Self.rule(path)
        let authenticator = self.authenticator
        router.admit(path: path) { context throws(GRPCStatus) in
            // (The generation read first: a change during the check is seen at `admit`.)
            let generation = authenticator.keyRing.generation
            let checkedAt = authenticator.clock.nowMicros() / 1_000_000
            let principal = try authenticator.principal(context)
            return AdmittedCaller(principal: principal, decided: try authenticator.authorizeBeforeDecoding(principal, access),
                                  keyRingGeneration: generation, checkedAtUnix: checkedAt)
        }
    }

    /// Registers a deferred method (`GRPCDeferredHandler`): authenticated,
    /// decoded and authorized on the loop as `register` does it, then handed
    /// to `handler` with the responder it answers through. A request larger
    /// than `maxRequestBytes` goes to `otherwise`, on the pool.
    mutating func registerDeferred<Request: Message, Response: Message>(
        _ path: String, maxRequestBytes: Int, _ handler: @escaping @Sendable (Request, GRPCResponder) -> Void,
        otherwise: @escaping @Sendable (Request, Principal) async throws -> Response
    ) {
        let access = Self.rule(path)
        let authenticator = self.authenticator
        router.registerDeferred(path: path, maxRequestBytes: maxRequestBytes, { bytes, context, respond in
            let request: Request
            do {
                (request, _) = try Self.admit(bytes, context, authenticator, access)
            } catch {
                respond.fail(error)
                return
            }
            handler(request, respond)
        }, otherwise: secured(path, otherwise))
        admitAtHeaders(path)
    }

    /// `handler` behind authentication and the access table.
    private func secured<Request: Message, Response: Message>(
        _ path: String, _ handler: @escaping @Sendable (Request, Principal) async throws -> Response
    ) -> GRPCUnaryHandler {
        let access = Self.rule(path)
        let authenticator = self.authenticator
        return { bytes, context in
            let (request, principal): (Request, Principal) = try Self.admit(bytes, context, authenticator, access)
            let response = try await handler(request, principal)
            return try (response as? any HandEncodable)?.handEncoded() ?? response.serializedBytes()
        }
    }

    /// The request and its caller, once authenticated and allowed.
    private static func admit<Request: Message>(
        _ bytes: [UInt8], _ context: GRPCCallContext, _ authenticator: Authenticator, _ access: Access
    ) throws -> (Request, Principal) {
        // Credentials first: a caller who cannot authenticate learns
        // nothing, not even whether its message decodes. Then the rights
        // that need no request: a caller who may not call the method is
        // refused before its message is decoded. Both were checked at the
        // headers (`admitAtHeaders`), which found this caller.
        let principal: Principal
        let decided: Bool
        if let admitted = context.admitted as? AdmittedCaller, admitted.keyRingGeneration == authenticator.keyRing.generation,
           admitted.checkedAtUnix == authenticator.clock.nowMicros() / 1_000_000 {
            (principal, decided) = (admitted.principal, admitted.decided)
        } else {
            // Not checked at the headers, or the keys or the second changed
            // since: checked now (a revoked or expired key is refused here).
            principal = try authenticator.principal(context)
            decided = try authenticator.authorizeBeforeDecoding(principal, access)
        }
        // The metering requests: counted on the wire, then decoded by hand
        // in their usual shape (one dynamic cast for both).
        var handDecoded: Request?
        if let hand = Request.self as? any HandDecodable.Type {
            try bytes.withUnsafeBytes { buffer in try hand.checkCounts(buffer) }
            handDecoded = hand.handDecoded(bytes) as? Request
        } else if let counted = Request.self as? any WireCounted.Type {
            try bytes.withUnsafeBytes { buffer in try counted.checkCounts(buffer) }
        }
        let request = try handDecoded ?? decode(Request.self, bytes)
        let account = Self.scopedAccount(request, principal)
        if account?.isEmpty == true {
            // A required account left out: the caller's rights first (as for
            // their own account: a user may not be told "missing" for a
            // method they may not call at all), then the missing field, the
            // same for every caller (a user was told "account  does not exist").
            let own: String? = if case .user(_, let own, _, _) = principal { own } else { nil }
            try authenticator.authorize(principal, access, accountID: own)
            throw GRPCStatus(.invalidArgument, "account_id is required", reason: "MISSING_FIELD", metadata: ["field": "account_id"])
        }
        // A user's role, once the request names the account (a service
        // key's scopes were all there was to check).
        if !decided { try authenticator.authorize(principal, access, accountID: account) }
        return (request, principal)
    }

    /// The account a request concerns, for the access check: its own, or
    /// for one that may leave it out and does, a user's own account; empty
    /// when a required one is left out.
    private static func scopedAccount(_ request: some Message, _ principal: Principal) -> String? {
        guard let scoped = request as? any AccountScoped else { return nil }
        if scoped.accountID.isEmpty, type(of: scoped).accountIsOptional {
            if case .user(_, let own, _, _) = principal { return own }
            return nil  // (a service key: not about one account)
        }
        return scoped.accountID
    }

    private static func rule(_ path: String) -> Access {
        guard let access = AccessTable.rules[path] else { preconditionFailure("no access rule for \(path)") }
        return access
    }
}
