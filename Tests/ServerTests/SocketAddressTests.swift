import Server
import Testing

/// `--listen` and `--metrics-listen` are checked against each other before
/// anything runs: addresses compared as addresses, not as text.
@Suite struct SocketAddressTests {
    static func overlap(_ a: String, _ b: String) -> Bool {
        SocketAddress(parsing: a)!.bindsOverlap(with: SocketAddress(parsing: b)!)
    }

    @Test func theSameAddressSpelledTwoWaysOverlaps() {
        #expect(Self.overlap("127.0.0.1:5000", "127.0.0.1:5000"))
        #expect(Self.overlap("[::1]:5000", "[0::1]:5000"))
        #expect(Self.overlap("[::0]:5000", "[0:0:0:0:0:0:0:0]:5000"))
        #expect(Self.overlap("127.0.0.1:5000", "[::ffff:127.0.0.1]:5000"))  // IPv4-mapped: binds as IPv4
        #expect(Self.overlap("[::ffff:0.0.0.0]:5000", "10.0.0.7:5000"))
    }

    @Test func aWildcardCoversItsFamilyAndTheIPv6OneCoversBoth() {
        #expect(Self.overlap("0.0.0.0:5000", "127.0.0.1:5000"))
        #expect(Self.overlap(":5000", "10.0.0.7:5000"))  // (an empty host is 0.0.0.0)
        #expect(Self.overlap("[::]:5000", "127.0.0.1:5000"))
        #expect(Self.overlap("[::]:5000", "0.0.0.0:5000"))
        #expect(!Self.overlap("0.0.0.0:5000", "[::1]:5000"))
    }

    @Test func otherPortsOrAddressesOrPortZeroDoNot() {
        #expect(!Self.overlap("127.0.0.1:5000", "127.0.0.1:5001"))
        #expect(!Self.overlap("127.0.0.1:5000", "127.0.0.2:5000"))
        #expect(!Self.overlap("127.0.0.1:0", "127.0.0.1:0"))
        #expect(!Self.overlap("localhost:5000", "127.0.0.1:5000"))  // (a name is refused on its own)
    }
}
