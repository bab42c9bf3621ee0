import BillingProto
import Client
public import HTTP2
import SwiftProtobuf
public import TLS

/// Creates the run's Pro accounts with credits (and, for a mix with cost
/// queries, a debited run each) before the timed phase, one call at a time
/// on one connection.
public struct AccountProvisioner {
    let host: String
    let port: UInt16
    let tls: TLSContext?
    let authorization: [HTTP2Header]

    public init(host: String, port: UInt16, tls: TLSContext?, authorization: [HTTP2Header]) {
        self.host = host
        self.port = port
        self.tls = tls
        self.authorization = authorization
    }

    /// Creates `count` accounts named after `runID`, each granted `creditsMicros`; returns their ids.
    /// `seedRuns`: each account also gets one debited run (`LoadKeys.seedRun`),
    /// so that execution-cost queries ask for runs that exist from the start
    /// and usage queries for accounts with usage (session 26: a usage-only
    /// mix asked about empty accounts, h2load about one with usage).
    /// Throws `ProvisioningError` when the server refuses a call, the connection's error when it fails.
    public func provision(count: Int, runID: String, creditsMicros: Int64, seedRuns: Bool = false) throws -> [String] {
        let connection = try GRPCClientConnection(host: host, port: port, tls: tls)
        var ids: [String] = []
        for index in 0..<count {
            let id = LoadKeys.account(runID: runID, index: index)
            var create = Billing_V1_CreateAccountRequest()
            create.accountID = id
            create.initialPlan = .pro
            try expectOK(connection.call(path: "/billing.v1.Accounts/CreateAccount", message: create.serializedBytes(),
                                         metadata: authorization), "CreateAccount")
            var grant = Billing_V1_GrantCreditsRequest()
            grant.accountID = id
            grant.amountMicros = creditsMicros
            grant.reason = "billing load"
            grant.idempotencyKey = LoadKeys.creditGrant(account: id)
            try expectOK(connection.call(path: "/billing.v1.Admin/GrantCredits", message: grant.serializedBytes(),
                                         metadata: authorization), "GrantCredits")
            if seedRuns {
                var debit = Billing_V1_DebitRequest()
                debit.accountID = id
                debit.workspaceID = "w1"
                debit.agentID = "agent-0"
                debit.runID = LoadKeys.seedRun(account: id)
                debit.idempotencyKey = LoadKeys.seedKey(account: id)
                var item = Billing_V1_LineItem()
                item.toolCall.integration = "slack"
                item.toolCall.calls = 1
                debit.lineItems = [item]
                try expectOK(connection.call(path: "/billing.v1.Metering/Debit", message: debit.serializedBytes(),
                                             metadata: authorization), "Debit (seed run)")
            }
            ids.append(id)
        }
        return ids
    }

    private func expectOK(_ completion: GRPCClientConnection.Completion, _ what: String) throws {
        guard completion.status == 0 else {
            throw ProvisioningError(call: what, status: statusName(completion.status), message: completion.message)
        }
    }
}

/// The server refused a provisioning call (a key without accounts:admin, say).
public struct ProvisioningError: Error, CustomStringConvertible {
    public let call: String
    public let status: String
    public let message: String

    public var description: String { "provisioning failed: \(call) answered \(status): \(message)" }
}
