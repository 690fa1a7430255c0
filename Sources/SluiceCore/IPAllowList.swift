#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as 16 bytes (IPv4 as IPv4-mapped IPv6).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes, network order.
    public let bytes: [UInt8]
    /// Whether it was written as IPv4.
    public let isV4: Bool

    /// Parses a textual IPv4 or IPv6 address (with an optional `%zone` or brackets); nil when malformed.
    public init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        let string = String(text)
        var v4 = in_addr()
        if string.contains("."), !string.contains(":"), inet_pton(AF_INET, string, &v4) == 1 {
            let value = UInt32(bigEndian: v4.s_addr)
            bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                     UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
            isV4 = true
            return
        }
        var v6 = in6_addr()
        guard string.contains(":"), inet_pton(AF_INET6, string, &v6) == 1 else { return nil }
        let raw = withUnsafeBytes(of: &v6) { Array($0) }
        bytes = raw
        // An IPv4-mapped IPv6 address matches IPv4 rules.
        isV4 = raw[0..<10].allSatisfy { $0 == 0 } && raw[10] == 0xff && raw[11] == 0xff
    }

    /// Dotted IPv4, or IPv6 in its canonical short form (RFC 5952: `2001:db8::7`, as the system writes it).
    public var description: String {
        if isV4 { return bytes[12...].map(String.init).joined(separator: ".") }
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))  // cannot fail: the family is right, the room enough
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One allow-list entry: an address or a CIDR range.
public struct IPRange: Sendable, Hashable {
    let network: [UInt8]
    let prefixBits: Int

    /// Parses `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32`, `::1`; nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        var bits = 128
        if parts.count == 2 {
            guard let given = Int(parts[1]), given >= 0 else { return nil }
            let maximum = address.isV4 ? 32 : 128
            guard given <= maximum else { return nil }
            bits = address.isV4 ? 96 + given : given
        }
        prefixBits = bits
        network = address.bytes
    }

    /// Whether `address` lies in the range.
    public func contains(_ address: IPAddress) -> Bool {
        var remaining = prefixBits
        var index = 0
        while remaining > 0 {
            let take = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - take))
            if network[index] & mask != address.bytes[index] & mask { return false }
            remaining -= take
            index += 1
        }
        return true
    }
}

/// A token's `allow_ips`: comma- or newline-separated addresses and ranges; empty means any address.
public struct IPAllowList: Sendable, Hashable {
    /// The parsed entries.
    public let ranges: [IPRange]

    /// Parses the list; throws naming the first malformed entry.
    public init(parsing text: String) throws(ValidationError) {
        var ranges: [IPRange] = []
        for entry in IPAllowList.entries(text) {
            guard let range = IPRange(entry) else {
                throw ValidationError("allow_ips: '\(entry)' is not a valid IP address or CIDR range")
            }
            ranges.append(range)
        }
        self.ranges = ranges
    }

    /// Splits on commas, newlines and blanks.
    public static func entries(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == "\r" || $0 == " " || $0 == "\t" || $0 == ";" }).map(String.init)
    }

    /// Whether the list allows `address` (an empty list allows every address).
    public func allows(_ address: IPAddress?) -> Bool {
        if ranges.isEmpty { return true }
        guard let address else { return false }
        return ranges.contains { $0.contains(address) }
    }
}
