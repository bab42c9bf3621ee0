public import BillingCore
import BillingProto
public import Foundation

/// A debit as the ledger sees it: already validated and priced.
public final class DebitCommand: Sendable {
    public let accountID: String
    public let workspaceID: String
    public let agentID: String
    public let runID: String
    public let idempotencyKey: String
    public let priced: PricedDebit
    /// SHA-256 of the request's canonical form (`fingerprint(...)`): as
    /// `Data`, what an entry's request hash is, so the entry shares it.
    public let fingerprint: Data
    /// `JournalKeyHash.debit` of (account, key): computed once, used by every lookup.
    public let keyHash: Int64
    /// `JournalKeyHash.run` of (account, run): how the account's period counts the run.
    public let runHash: Int64

    public convenience init(accountID: String, workspaceID: String, agentID: String, runID: String,
                            idempotencyKey: String, priced: PricedDebit, fingerprint: [UInt8]) {
        self.init(accountID: accountID, workspaceID: workspaceID, agentID: agentID, runID: runID,
                  idempotencyKey: idempotencyKey, priced: priced, digest: Data(fingerprint))
    }

    /// The same with the fingerprint as `Data` already (the service's).
    public init(accountID: String, workspaceID: String, agentID: String, runID: String,
                idempotencyKey: String, priced: PricedDebit, digest fingerprint: Data) {
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
    /// Never to change: retries across restarts and upgrades are told from
    /// reused keys by it (`FingerprintTests` pins it). Written through a
    /// pointer (`ProtobufWriter.raw`), texts read in place.
    public static func canonicalBytes(workspaceID: String, agentID: String, runID: String, items: [LineItem]) -> [UInt8] {
        withCanonicalBytes(workspaceID: workspaceID, agentID: agentID, runID: runID, items: items) { Array($0) }
    }

    /// `canonicalBytes`, lent in place to `body` (hashed where they are
    /// written: no array, no copy).
    public static func withCanonicalBytes<R>(workspaceID: String, agentID: String, runID: String, items: [LineItem],
                                             _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var out = ProtobufWriter(capacity: 64 + workspaceID.utf8.count + agentID.utf8.count + runID.utf8.count + items.count * 48)
        field(workspaceID, &out)
        field(agentID, &out)
        field(runID, &out)
        for item in items {
            switch item {
            case let .llm(model, input, output):
                field("llm", &out); field(model, &out); number(input, &out); number(output, &out)
            case let .toolCall(integration, calls):
                field("tool_call", &out); field(integration, &out); number(calls, &out)
            case let .storage(kind, count):
                field("storage", &out); field(kind.rawValue, &out); number(count, &out)
            }
        }
        return out.withBytes(body)
    }

    /// A text: its UTF-8 length as 4 bytes big-endian, then its UTF-8.
    private static func field(_ text: String, _ out: inout ProtobufWriter) {
        let written: Void? = text.utf8.withContiguousStorageIfAvailable { utf8 in
            withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { out.raw($0) }
            out.raw(UnsafeRawBufferPointer(utf8))
        }
        if written == nil { field(String(decoding: Array(text.utf8), as: UTF8.self), &out) }
    }

    /// A number: 8 bytes big-endian.
    private static func number(_ value: Int64, _ out: inout ProtobufWriter) {
        withUnsafeBytes(of: value.bigEndian) { out.raw($0) }
    }
}
