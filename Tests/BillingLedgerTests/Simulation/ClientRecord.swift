import BillingLedger
import BillingProto
import Foundation
import Synchronization

/// What a client saw for one debit call.
enum SeenOutcome: Sendable {
    case accepted(Entry)
    case refused(Entry)
    case keyReused(original: Entry)
    /// A reused key of an account that does not exist: refused, nothing recorded.
    case unknownAccount
    /// The call threw (UNAVAILABLE, RESOURCE_EXHAUSTED, a crashed process):
    /// whether it took effect is unknown to the client.
    case failed(String)

    init(_ outcome: DebitOutcome) {
        switch outcome {
        case .accepted(let record): self = .accepted(record.entry)
        case .refused(let record): self = .refused(record.entry)
        case .keyReused(let original): self = .keyReused(original: original.entry)
        case .unknownAccount: self = .unknownAccount
        case .failed(let error): self = .failed("\(error)")
        }
    }
}

struct Attempt: Sendable {
    let command: DebitCommand
    let outcome: SeenOutcome
}

/// Identifies one request: the same key with another request is another identity.
struct RequestIdentity: Hashable, Sendable {
    let account: String
    let key: String
    let fingerprint: Data

    init(_ command: DebitCommand) {
        account = command.accountID
        key = command.idempotencyKey
        fingerprint = Data(command.fingerprint)
    }

    init(account: String, key: String, fingerprint: Data) {
        self.account = account
        self.key = key
        self.fingerprint = fingerprint
    }
}

/// A grant the ledger acknowledged.
struct AcknowledgedGrant: Sendable {
    let seq: Int64
    let account: String
    let key: String
    let micros: Int64
}

/// Everything the clients of one simulation saw, filled in concurrently.
final class ClientRecord: Sendable {
    struct Contents {
        var attempts: [Attempt] = []
        /// Entries of acknowledged account creations.
        var acknowledged: [Entry] = []
        var grants: [AcknowledgedGrant] = []
        /// Errors no client should ever see.
        var unexpected: [String] = []
    }

    private let contents = Mutex(Contents())

    func record(_ attempt: Attempt) { contents.withLock { $0.attempts.append(attempt) } }

    func acknowledged(_ entry: Entry) { contents.withLock { $0.acknowledged.append(entry) } }

    func acknowledged(_ grant: AcknowledgedGrant) { contents.withLock { $0.grants.append(grant) } }

    func unexpected(_ text: String) { contents.withLock { $0.unexpected.append(text) } }

    var snapshot: Contents { contents.withLock { $0 } }
}

extension Error {
    /// Whether a client may see this error from a debit, a grant or an
    /// account creation during the simulation: the journal failed, the
    /// ledger was overloaded, or its process had crashed.
    var isExpectedInSimulation: Bool {
        if self is StoreFault { return true }
        switch self as? LedgerError {
        case .unavailable?, .overloaded?, .accountNotFound?: return true
        default: return false
        }
    }
}
