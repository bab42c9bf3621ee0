import BillingCore
import BillingLedger
import Testing

/// A debit's fingerprint is what tells a retry from a reused key, across
/// restarts and upgrades: its canonical bytes must never change. These are
/// pinned against bytes and digests computed independently (Python's
/// `struct` and `hashlib`).
@Suite struct FingerprintTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func theCanonicalBytesAndDigestArePinned() {
        let items: [LineItem] = [
            .llm(model: "gpt-4o", inputTokens: 1_200, outputTokens: 300),
            .toolCall(integration: "slack", calls: 3),
            .storage(kind: .knowledgeBase, bytes: 1 << 40),
        ]
        let bytes = DebitCommand.canonicalBytes(workspaceID: "w1", agentID: "agent-é", runID: "run-1", items: items)
        // Each text as a 4-byte big-endian length and its UTF-8; each number 8 bytes big-endian.
        #expect(Array(bytes.prefix(20)) == [0, 0, 0, 2, 119, 49, 0, 0, 0, 8, 97, 103, 101, 110, 116, 45, 195, 169, 0, 0])
        #expect(bytes.count == 127)
        #expect(Self.hex(DebitCommand.fingerprint(workspaceID: "w1", agentID: "agent-é", runID: "run-1", items: items))
            == "82d89e353a6e733ee2c22c873eeec0d5313ed8b817649a9d79f7cf930f69a9d9")
        #expect(Self.hex(SHA256.hash(DebitCommand.canonicalBytes(workspaceID: "", agentID: "", runID: "", items: [])))
            == "15ec7bf0b50732b49f8228e07d24365338f9e3ab994b00af08e5a3bffe55fd8b")
    }
}
