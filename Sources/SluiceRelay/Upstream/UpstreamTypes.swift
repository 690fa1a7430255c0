import NIOCore
import NIOHTTP1

/// One call to an upstream provider: always a request with a whole body (the gateway never streams a request).
public struct UpstreamRequest: Sendable {
    public var url: String
    public var method: HTTPMethod
    public var headers: [(String, String)]
    public var body: ByteBuffer

    public init(url: String, method: HTTPMethod = .POST, headers: [(String, String)] = [], body: ByteBuffer = ByteBuffer()) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
    }
}

/// A channel's three limits (docs/relay.md): the connection, the wait from sending the call until the answer starts,
/// and the longest silence while the answer is read.
public struct UpstreamTimeouts: Sendable, Hashable {
    public var connect: TimeAmount
    public var firstByte: TimeAmount
    public var idle: TimeAmount

    public init(connectMs: Int, firstByteMs: Int, idleMs: Int) {
        connect = .milliseconds(Int64(max(1, connectMs)))
        firstByte = .milliseconds(Int64(max(1, firstByteMs)))
        idle = .milliseconds(Int64(max(1, idleMs)))
    }
}

/// The head of an upstream's answer and its body, still arriving.
public struct UpstreamResponse: Sendable {
    public let status: Int
    public let headers: HTTPHeaderLines
    public let body: UpstreamBody
}

/// Why an upstream call failed, in the words the call log and the channel's health show.
public enum UpstreamError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidURL(String)
    case connectTimeout
    case connectFailed(String)
    case firstByteTimeout
    case idleTimeout
    /// The upstream closed the connection before its answer ended.
    case closed
    /// The answer is larger than the caller allows.
    case tooLarge(limit: Int)
    /// Bytes that are not HTTP/1.1.
    case malformed(String)
    /// A request that cannot be written as HTTP/1.1 (a line break in a header: a channel's key, say).
    case invalidRequest(String)
    /// The caller gave up (its task was cancelled, or it dropped the answer unread).
    case cancelled
    case shutDown

    public var description: String {
        switch self {
        case .invalidURL(let url): return "invalid upstream URL \(url)"
        case .connectTimeout: return "connect timeout"
        case .connectFailed(let why): return "connect failed: \(why)"
        case .firstByteTimeout: return "no answer within the first-byte timeout"
        case .idleTimeout: return "the upstream went silent (idle timeout)"
        case .closed: return "the upstream closed the connection"
        case .tooLarge(let limit): return "the answer is larger than \(limit) bytes"
        case .malformed(let why): return "the upstream's answer is not valid HTTP: \(why)"
        case .invalidRequest(let why): return "the request cannot be sent: \(why)"
        case .cancelled: return "cancelled"
        case .shutDown: return "the gateway is shutting down"
        }
    }
}

/// Where a URL points: scheme, host and port (what a pooled connection is for), and the request target.
struct UpstreamTarget: Hashable, Sendable {
    let tls: Bool
    let host: String
    let port: Int

    /// The `Host` header: the port only when it is not the scheme's default; IPv6 addresses in brackets.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// Whether the host is an IP address (sent without SNI).
    var hostIsAddress: Bool {
        host.contains(":") || host.utf8.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: ".") }
    }

    /// Splits `http(s)://[user@]host[:port][/path][?query]` into the target and the request's path and query.
    static func parse(_ url: String) throws(UpstreamError) -> (UpstreamTarget, path: String) {
        let tls: Bool
        let rest: Substring
        if url.hasPrefix("https://") { tls = true; rest = url.dropFirst(8) }
        else if url.hasPrefix("http://") { tls = false; rest = url.dropFirst(7) }
        else { throw .invalidURL(url) }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        if path.isEmpty { path = "/" } else if path.first == "?" { path = "/" + path }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var host: Substring
        var portText: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { throw .invalidURL(url) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw .invalidURL(url) }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        var port = tls ? 443 : 80
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { throw .invalidURL(url) }
            port = value
        }
        guard !host.isEmpty else { throw .invalidURL(url) }
        return (UpstreamTarget(tls: tls, host: host.lowercased(), port: port), path)
    }
}
