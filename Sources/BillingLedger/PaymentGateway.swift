public import BillingCore
import Synchronization

/// Where a payment method comes from, as the customer submitted it. Card
/// and account numbers live only in this value, on the way to the gateway.
public enum PaymentSource: Sendable {
    case card(number: String, expMonth: Int, expYear: Int, holder: String)
    case bankAccount(bankName: String, routingNumber: String, accountNumber: String, holder: String)
    /// A token the gateway issued already (its client-side SDK).
    case token(String)
}

/// A method the gateway tokenized: its token and the display details the
/// service keeps (never the full number).
public struct TokenizedMethod: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case card(brand: String, last4: String, expMonth: Int, expYear: Int)
        case bankAccount(bankName: String, last4: String)
    }

    public var token: String
    public var kind: Kind

    public init(token: String, kind: Kind) {
        self.token = token
        self.kind = kind
    }

    /// "visa •••• 4242", "First Test Bank •••• 6789".
    public var label: String {
        switch kind {
        case let .card(brand, last4, _, _): "\(brand) •••• \(last4)"
        case let .bankAccount(bank, last4): "\(bank) •••• \(last4)"
        }
    }
}

/// Why the gateway would not tokenize a method.
public struct GatewayRefusal: Error, Sendable, Equatable {
    /// Machine-readable, e.g. "INVALID_CARD_NUMBER", "CARD_EXPIRED".
    public var reason: String
    public var message: String

    public init(reason: String, message: String) {
        self.reason = reason
        self.message = message
    }
}

/// What a charge attempt did.
public enum ChargeOutcome: Sendable, Equatable {
    /// Collected; `reference` is the gateway's id of the charge.
    case succeeded(reference: String)
    /// Nothing collected.
    case failed(reason: String, message: String)
    /// No answer (a timeout, a connection lost): the charge may or may not
    /// have been made. Nothing is recorded; the charge stays pending and
    /// the gateway is asked again with the same key, which a real gateway
    /// answers with the first outcome (`Ledger.askGateway`).
    case unknown(message: String)

    /// Succeeded or failed: what the gateway decided (not `.unknown`).
    public var isFinal: Bool {
        if case .unknown = self { return false }
        return true
    }
}

/// The payment gateway: the one component outside this process that moves
/// money. A charge carries an idempotency key: the same key is answered with
/// the first outcome, never charged twice (how a retry after a crash between
/// the charge and its journal entry stays safe).
/// A charge whose outcome the gateway did not give (`ChargeOutcome.unknown`,
/// or no answer within `LedgerConfiguration.gatewayTimeoutSeconds`): it
/// stays pending, asked again with its key before anything else of its
/// account (the next tick, the account's next request). UNAVAILABLE,
/// `PAYMENT_GATEWAY_UNAVAILABLE`, to the caller: retry with the same key.
public struct GatewayUnavailable: Error, Sendable, Equatable {
    public var accountID: String
    public var message: String
}

/// `charge` must answer `.succeeded` or `.failed` only for a final outcome;
/// anything else — a timeout, a connection lost, a server error, "this
/// idempotency key is in use" (a call under it still running) — is
/// `.unknown`: a charge recorded failed is attempted again under a new key,
/// so a "failed" that was not final could charge the customer twice.
public protocol PaymentGateway: Sendable {
    func tokenize(_ source: PaymentSource, now: Int64) async throws(GatewayRefusal) -> TokenizedMethod
    func charge(token: String, amount: Money, idempotencyKey: String) async -> ChargeOutcome
}

/// The built-in test-mode gateway: no network, outcomes chosen by test card
/// numbers (README "Test cards"):
///
/// - 4242 4242 4242 4242: every charge succeeds (any other valid number too);
/// - 4000 0000 0000 0002: every charge is declined (CARD_DECLINED);
/// - 4000 0000 0000 0119: the card's first charge fails (PROCESSING_ERROR), later ones
///   succeed, however often it is tokenized (this process remembers it);
/// - bank accounts: charges succeed, except account number 000222333 (declined).
///
/// Numbers must pass the Luhn check and expiry must be in the future. Tokens
/// name the behaviour ("tok_test_decline_…"), so outcomes survive a restart;
/// the idempotency record and the fail-once memory are in memory only.
public final class TestPaymentGateway: PaymentGateway {
    public static let alwaysSucceeds = "4242424242424242"
    public static let alwaysDeclines = "4000000000000002"
    public static let failsOnce = "4000000000000119"
    public static let decliningBankAccount = "000222333"

    private struct Memory {
        var outcomes: [String: ChargeOutcome] = [:]
        var failedOnce: Set<String> = []
        var counter: UInt64 = 0
    }

    private let memory = Mutex(Memory())

    public init() {}

    public func tokenize(_ source: PaymentSource, now: Int64) async throws(GatewayRefusal) -> TokenizedMethod {
        let serial = memory.withLock { memory in
            memory.counter += 1
            return memory.counter
        }
        switch source {
        case let .card(number, expMonth, expYear, _):
            let digits = number.filter { $0 != " " && $0 != "-" }
            guard (12...19).contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), Self.luhnValid(digits) else {
                throw GatewayRefusal(reason: "INVALID_CARD_NUMBER", message: "the card number is not valid")
            }
            guard (1...12).contains(expMonth), (2000...2200).contains(expYear) else {
                throw GatewayRefusal(reason: "INVALID_EXPIRY", message: "the expiry date is not valid")
            }
            let today = CivilDate(unixSeconds: now)
            guard (expYear, expMonth) >= (today.year, today.month) else {
                throw GatewayRefusal(reason: "CARD_EXPIRED", message: "the card has expired")
            }
            let behaviour = switch digits {
            case Self.alwaysDeclines: "decline"
            case Self.failsOnce: "failonce"
            default: "ok"
            }
            // The fail-once card's token names the card, not the
            // tokenization: its first charge fails however often it is
            // given again (a PayInvoice retried with the card inline
            // tokenizes it anew each time, and failed every time).
            let identity = behaviour == "failonce" ? "card_\(expYear)_\(expMonth)" : "\(serial)"
            let kind = TokenizedMethod.Kind.card(brand: Self.brand(digits), last4: String(digits.suffix(4)), expMonth: expMonth, expYear: expYear)
            return TokenizedMethod(token: "tok_test_\(behaviour)_\(identity)\(Self.describe(kind))", kind: kind)
        case let .bankAccount(bankName, routingNumber, accountNumber, _):
            let digits = accountNumber.filter { $0 != " " && $0 != "-" }
            guard (4...17).contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
                throw GatewayRefusal(reason: "INVALID_ACCOUNT_NUMBER", message: "the account number is not valid")
            }
            guard routingNumber.count == 9, routingNumber.allSatisfy(\.isASCII), routingNumber.allSatisfy(\.isNumber) else {
                throw GatewayRefusal(reason: "INVALID_ROUTING_NUMBER", message: "the routing number must be 9 digits")
            }
            guard !bankName.isEmpty, bankName.utf8.count <= 100 else {
                throw GatewayRefusal(reason: "INVALID_BANK_NAME", message: "the bank name must be 1 to 100 bytes")
            }
            let behaviour = digits == Self.decliningBankAccount ? "decline" : "ok"
            let kind = TokenizedMethod.Kind.bankAccount(bankName: bankName, last4: String(digits.suffix(4)))
            return TokenizedMethod(token: "tok_test_\(behaviour)_\(serial)\(Self.describe(kind))", kind: kind)
        case .token(let token):
            // A token this gateway issued (its client side would hand one
            // over): the method's details are read back from it. Session 29:
            // any "tok_test_…" was taken, and shown as "visa 4242 12/2099"
            // whatever it was — a declining card listed as the good one.
            guard token.utf8.count <= 200, let kind = Self.details(of: token) else {
                throw GatewayRefusal(reason: "INVALID_GATEWAY_TOKEN", message: "unknown gateway token")
            }
            return TokenizedMethod(token: token, kind: kind)
        }
    }

    /// The tail of a token that names what it stands for:
    /// "~card.visa.4242.12.2099", "~bank.6789.First Test Bank".
    static func describe(_ kind: TokenizedMethod.Kind) -> String {
        switch kind {
        case let .card(brand, last4, expMonth, expYear): "~card.\(brand).\(last4).\(expMonth).\(expYear)"
        case let .bankAccount(bankName, last4): "~bank.\(last4).\(bankName)"
        }
    }

    /// What a token `tokenize` issued stands for; nil for any other text.
    static func details(of token: String) -> TokenizedMethod.Kind? {
        let behaviours = ["tok_test_ok_", "tok_test_decline_", "tok_test_failonce_"]
        guard behaviours.contains(where: token.hasPrefix), let tilde = token.firstIndex(of: "~") else { return nil }
        let identity = token[token.index(token.startIndex, offsetBy: 0)..<tilde].split(separator: "_", omittingEmptySubsequences: false).dropFirst(3)
        guard !identity.isEmpty, identity.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }) else {
            return nil
        }
        let parts = token[token.index(after: tilde)...].split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        func digits(_ text: Substring, _ count: ClosedRange<Int>) -> Bool {
            count.contains(text.count) && text.allSatisfy { $0.isASCII && $0.isNumber }
        }
        switch parts.first {
        case "card"?:
            let card = token[token.index(after: tilde)...].split(separator: ".", omittingEmptySubsequences: false)
            guard card.count == 5, !card[1].isEmpty, card[1].allSatisfy({ $0.isASCII && $0.isLowercase }), digits(card[2], 4...4),
                  digits(card[3], 1...2), digits(card[4], 4...4), let month = Int(card[3]), let year = Int(card[4]),
                  (1...12).contains(month) else { return nil }
            return .card(brand: String(card[1]), last4: String(card[2]), expMonth: month, expYear: year)
        case "bank"?:
            guard parts.count == 3, digits(parts[1], 4...4), !parts[2].isEmpty, parts[2].utf8.count <= 100 else { return nil }
            return .bankAccount(bankName: String(parts[2]), last4: String(parts[1]))
        default:
            return nil
        }
    }

    public func charge(token: String, amount: Money, idempotencyKey: String) async -> ChargeOutcome {
        memory.withLock { memory in
            if let earlier = memory.outcomes[idempotencyKey] { return earlier }
            memory.counter += 1
            let outcome: ChargeOutcome
            if token.hasPrefix("tok_test_decline_") {
                // (Tokens from before session 29 say nothing of their kind: a card's decline.)
                outcome = token.contains("~bank.")
                    ? .failed(reason: "BANK_ACCOUNT_DECLINED", message: "the bank account was declined")
                    : .failed(reason: "CARD_DECLINED", message: "the payment method was declined")
            } else if token.hasPrefix("tok_test_failonce_"), memory.failedOnce.insert(token).inserted {
                outcome = .failed(reason: "PROCESSING_ERROR", message: "the gateway could not process the charge")
            } else {
                outcome = .succeeded(reference: "gw_test_\(memory.counter)")
            }
            memory.outcomes[idempotencyKey] = outcome
            return outcome
        }
    }

    static func luhnValid(_ digits: String) -> Bool {
        var sum = 0
        for (index, character) in digits.reversed().enumerated() {
            guard var digit = character.wholeNumberValue else { return false }
            if index % 2 == 1 {
                digit *= 2
                if digit > 9 { digit -= 9 }
            }
            sum += digit
        }
        return sum % 10 == 0
    }

    static func brand(_ digits: String) -> String {
        if digits.hasPrefix("4") { return "visa" }
        if digits.hasPrefix("34") || digits.hasPrefix("37") { return "amex" }
        if let two = Int(digits.prefix(2)), (51...55).contains(two) { return "mastercard" }
        if let four = Int(digits.prefix(4)), (2221...2720).contains(four) { return "mastercard" }
        if digits.hasPrefix("6011") || digits.hasPrefix("65") { return "discover" }
        return "card"
    }
}

/// A clock an operator moves by hand (`serve --test-clock`, Admin
/// AdvanceClock): it starts at the real time and only ever moves forward.
public final class TestClock: LedgerClock {
    private let micros: Atomic<Int64>

    public init(startMicros: Int64) {
        micros = Atomic(startMicros)
    }

    public func nowMicros() -> Int64 { micros.load(ordering: .acquiring) }

    /// Puts the clock back to `micros` (a transition whose commit failed:
    /// the journal's clock is where it was; callers hold the lifecycle lock).
    func setBack(toMicros micros: Int64) {
        self.micros.store(micros, ordering: .releasing)
    }

    /// Moves the clock to `target` if that is later.
    public func advance(toMicros target: Int64) {
        var current = micros.load(ordering: .acquiring)
        while current < target {
            let (exchanged, original) = micros.compareExchange(expected: current, desired: target, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }
}

/// What a payment request gave to pay with, as its idempotency key
/// remembers it (journaled as `requested_method`): "none" (the method on
/// file), or the method's visible details — never a card or account
/// number. A key's retry must give the same; keys of entries from before
/// session 29 remember no method and compare what they asked for only.
public enum RequestedMethod {
    public static let none = "none"

    /// "card 4242 12/2099", "bank 6789 110000000", "token tok_…": from the
    /// request's own input (PaymentsService), before anything is tokenized.
    public static func card(last4: String, expMonth: Int, expYear: Int) -> String { "card \(last4) \(expMonth)/\(expYear)" }
    public static func bank(last4: String, routing: String) -> String { "bank \(last4) \(routing)" }
    public static func token(_ token: String) -> String { "token \(token)" }

    /// For a caller that has only the tokenized method (tests, tools).
    static func describing(_ method: TokenizedMethod?) -> String {
        method.map { token($0.token) } ?? none
    }

    /// A key record's request: what was asked for, then (since session 29)
    /// the method on a line of its own. Ids and amounts hold no newline.
    static func join(_ asked: String, _ method: String) -> String {
        method.isEmpty ? asked : asked + "\n" + method
    }

    /// The parts of `join`'s text; the method nil when none was recorded.
    static func split(_ request: String) -> (asked: String, method: String?) {
        guard let newline = request.firstIndex(of: "\n") else { return (request, nil) }
        return (String(request[..<newline]), String(request[request.index(after: newline)...]))
    }
}
