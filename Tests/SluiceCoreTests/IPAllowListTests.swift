import SluiceCore
import Testing

@Suite struct IPAllowListTests {
    @Test func emptyAllowsAll() throws {
        let list = try IPAllowList(parsing: "")
        #expect(list.allows(IPAddress("8.8.8.8")))
    }

    @Test func addressesAndRanges() throws {
        let list = try IPAllowList(parsing: "192.168.1.1, 10.0.0.0/8\n2001:db8::/32,::1")
        #expect(list.allows(IPAddress("192.168.1.1")))
        #expect(!list.allows(IPAddress("192.168.1.2")))
        #expect(list.allows(IPAddress("10.200.3.4")))
        #expect(!list.allows(IPAddress("11.0.0.1")))
        #expect(list.allows(IPAddress("2001:db8:1::5")))
        #expect(!list.allows(IPAddress("2001:db9::1")))
        #expect(list.allows(IPAddress("::1")))
        #expect(list.allows(IPAddress("::ffff:10.1.1.1")), "IPv4-mapped IPv6 matches IPv4 ranges")
        #expect(!list.allows(nil))
    }

    /// Addresses are written as people and logs expect them: dotted IPv4, IPv6 in its short form.
    @Test(arguments: [("10.1.2.3", "10.1.2.3"), ("2001:db8:0:0:0:0:0:7", "2001:db8::7"), ("::1", "::1"), ("[fe80::1%eth0]", "fe80::1"),
                      ("2001:DB8:0:1:0:0:0:0", "2001:db8:0:1::"), ("::ffff:10.1.1.1", "10.1.1.1"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8")])
    func addressesAreWrittenShort(_ text: String, _ written: String) throws {
        #expect(try #require(IPAddress(text)).description == written)
    }

    @Test func oddPrefixes() throws {
        let list = try IPAllowList(parsing: "172.16.0.0/12")
        #expect(list.allows(IPAddress("172.31.255.255")))
        #expect(!list.allows(IPAddress("172.32.0.0")))
    }

    @Test(arguments: ["1.2.3", "300.1.1.1", "10.0.0.0/33", "::1/129", "abc", "1.2.3.4/x"])
    func malformedEntriesAreRefused(_ entry: String) {
        #expect(throws: ValidationError.self) { try IPAllowList(parsing: entry) }
    }
}
