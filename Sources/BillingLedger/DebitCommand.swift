public import BillingCore

/// A debit as the ledger sees it: already validated and priced.
public struct DebitCommand: Sendable {
    public var accountID: String
    public var workspaceID: String
    public var agentID: String
    public var runID: String
    public var idempotencyKey: String
    public var priced: PricedDebit
    /// SHA-256 of the request's canonical form (`fingerprint(...)`).
    public var fingerprint: [UInt8]
    /// `JournalKeyHash.debit` of (account, key): computed once, used by every lookup.
    public let keyHash: Int64
    /// `JournalKeyHash.run` of (account, run): how the account's period counts the run.
    public let runHash: Int64

    public init(accountID: String, workspaceID: String, agentID: String, runID: String,
                idempotencyKey: String, priced: PricedDebit, fingerprint: [UInt8]) {
        self.accountID = accountID
        self.workspaceID = workspaceID
        self.agentID = agentID
        self.runID = runID
        self.idempotencyKey = idempotencyKey
        self.priced = priced
        self.fingerprint = fingerprint
        self.keyHash = JournalKeyHash.debit(account: accountID, key: idempotencyKey)
        self.runHash = JournalKeyHash.run(account: accountID, run: runID)
    }

    /// A request's identity for idempotency: SHA-256 of `canonicalBytes`.
    public static func fingerprint(workspaceID: String, agentID: String, runID: String, items: [LineItem]) -> [UInt8] {
        SHA256.hash(canonicalBytes(workspaceID: workspaceID, agentID: agentID, runID: runID, items: items))
    }

    /// Every field that shapes the charge, length-prefixed so no two
    /// requests share an encoding. (The service hashes it with OpenSSL's
    /// SHA-256, the ledger's tests with BillingCore's; the digests are equal.)
    public static func canonicalBytes(workspaceID: String, agentID: String, runID: String, items: [LineItem]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + workspaceID.utf8.count + agentID.utf8.count + runID.utf8.count + items.count * 48)
        func field(_ text: String) {
            var text = text
            text.withUTF8 { utf8 in  // read in place: no array per field
                withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
                bytes.append(contentsOf: utf8)
            }
        }
        func number(_ value: Int64) {
            withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        }
        field(workspaceID)
        field(agentID)
        field(runID)
        for item in items {
            switch item {
            case let .llm(model, input, output):
                field("llm"); field(model); number(input); number(output)
            case let .toolCall(integration, calls):
                field("tool_call"); field(integration); number(calls)
            case let .storage(kind, count):
                field("storage"); field(kind.rawValue); number(count)
            }
        }
        return bytes
    }
}
