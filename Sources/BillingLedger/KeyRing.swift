import BillingProto
import Synchronization

/// The service API keys, readable from any thread without the ledger actor:
/// every call's authentication looks here. The ledger replaces the contents
/// whenever a key entry is applied, so a revocation is seen by the next call.
public final class KeyRing: Sendable {
    public struct Key: Sendable, Equatable {
        public let keyID: String
        public let name: String
        public let scopes: [String]
        public let hash: [UInt8]
        public let createdUnix: Int64
        public let createdBy: String
        public let expiresUnix: Int64
        public let revokedUnix: Int64
    }

    private let keys = Mutex<[String: Key]>([:])
    private let generationCounter = Atomic<UInt64>(0)

    public init() {}

    public func key(_ keyID: String) -> Key? { keys.withLock { $0[keyID] } }

    /// Grows after every `replace`, once the new keys are in place. Read it
    /// before `key(_:)`: a verification made under a value stays good only
    /// while the value has not moved.
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    public var all: [Key] { keys.withLock { Array($0.values) }.sorted { ($0.createdUnix, $0.keyID) < ($1.createdUnix, $1.keyID) } }

    func replace(from state: LedgerState) {
        var fresh: [String: Key] = [:]
        for (id, record) in state.apiKeys {
            fresh[id] = Key(keyID: id, name: record.created.name, scopes: record.created.scopes,
                            hash: [UInt8](record.created.keyHash), createdUnix: record.createdUnix,
                            createdBy: record.created.actor, expiresUnix: record.created.expiresUnix,
                            revokedUnix: record.revokedUnix)
        }
        keys.withLock { $0 = fresh }
        generationCounter.add(1, ordering: .releasing)
    }
}
