import Foundation
import NIOCore
import NIOPosix

/// One TCP connection to a live server, written and read as bytes: for what an HTTP client library hides (pipelined
/// requests, the framing of answers, who closes the connection).
final class RawHTTPConnection: @unchecked Sendable {
    /// One answer as it came on the wire.
    struct Answer {
        let statusLine: String
        let headers: [(String, String)]
        let body: String
        /// The body was sent in chunks, and ended with the zero-length chunk.
        let chunked: Bool

        var status: Int { Int(statusLine.split(separator: " ")[1]) ?? 0 }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    private let channel: any Channel
    private let received: Received

    private init(channel: any Channel, received: Received) {
        self.channel = channel
        self.received = received
    }

    /// Connects to `port`. With `paused`, nothing is read until `resumeReading()`, and the socket's receive buffer is
    /// small, so a server writing to it soon finds the connection full.
    static func open(port: Int, paused: Bool = false) async throws -> RawHTTPConnection {
        let received = Received()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if paused {
            bootstrap = bootstrap.channelOption(ChannelOptions.autoRead, value: false)
                .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 4096)
        }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(received: received)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawHTTPConnection(channel: channel, received: received)
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    /// Starts reading what the server sent (after `open(port:paused: true)`).
    func resumeReading() async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: true).get()
        channel.read()
    }

    /// Ends what this side sends (a half-close): the server still answers what it has.
    func shutdownOutput() async throws {
        try await channel.close(mode: .output)
    }

    /// The next `count` answers, waiting up to `timeout` for them.
    func answers(_ count: Int, timeout: Duration = .seconds(20)) async throws -> [Answer] {
        var parsed: [Answer] = []
        try await wait(for: "\(count) answers", timeout: timeout) {
            parsed = received.parse().0
            return parsed.count >= count
        }
        return Array(parsed.prefix(count))
    }

    /// The count of whole answers received so far.
    var answered: Int { received.parse().0.count }

    /// Waits until the bytes received so far contain `text`.
    func waitFor(_ text: String, timeout: Duration = .seconds(20)) async throws {
        try await wait(for: text, timeout: timeout) { received.text.contains(text) }
    }

    /// Waits until what was received ends with `suffix` (cheap however much has come: for large answers, whose
    /// parse is then done once).
    func waitUntilEnds(with suffix: String, timeout: Duration = .seconds(30)) async throws {
        let bytes = Array(suffix.utf8)
        try await wait(for: "\(suffix.debugDescription) at the end", timeout: timeout, every: .milliseconds(20)) { received.ends(with: bytes) }
    }

    /// Polls `done` until it holds; fails when the server closes first or `timeout` passes (`what` names the wait).
    private func wait(for what: String, timeout: Duration, every interval: Duration = .milliseconds(5),
                      until done: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !done() {
            if received.closed { throw RawHTTPError("the server closed the connection before \(what)") }
            if ContinuousClock.now > deadline { throw RawHTTPError("no \(what) within \(timeout)") }
            try await Task.sleep(for: interval)
        }
    }

    /// Whether the server closes the connection within `timeout`.
    func closedByServer(within timeout: Duration = .seconds(10)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !received.closed {
            if ContinuousClock.now > deadline { return false }
            try await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    func close() async {
        try? await channel.close()
    }

    /// The bytes received so far and whether the server closed.
    private final class Received: @unchecked Sendable {
        private let lock = NSLock()
        private var bytes: [UInt8] = []
        private var isClosed = false

        var closed: Bool { lock.withLock { isClosed } }
        var text: String { String(decoding: lock.withLock { bytes }, as: UTF8.self) }
        func ends(with suffix: [UInt8]) -> Bool { lock.withLock { bytes.count >= suffix.count && bytes.suffix(suffix.count).elementsEqual(suffix) } }
        func append(_ buffer: ByteBuffer) { lock.withLock { bytes.append(contentsOf: buffer.readableBytesView) } }
        func markClosed() { lock.withLock { isClosed = true } }

        /// Every complete answer in what has been received, and the count of bytes they take.
        func parse() -> ([Answer], Int) {
            let (bytes, closed) = lock.withLock { (self.bytes, isClosed) }
            var answers: [Answer] = []
            var offset = 0
            while let (answer, used) = Self.answer(in: bytes[offset...], closed: closed) {
                answers.append(answer)
                offset += used
            }
            return (answers, offset)
        }

        /// An answer without a length or chunks (to HTTP/1.0) runs until the close.
        private static func answer(in bytes: ArraySlice<UInt8>, closed: Bool) -> (Answer, Int)? {
            let separator: [UInt8] = Array("\r\n\r\n".utf8)
            guard let headEnd = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return nil }
            let lines = String(decoding: bytes[bytes.startIndex..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
            let headers = lines.dropFirst().compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
            var position = headEnd + 4
            if lines[0].split(separator: " ").dropFirst().first?.hasPrefix("1") == true {
                // An informational answer (100 Continue) has no body.
                return (Answer(statusLine: lines[0], headers: headers, body: "", chunked: false), position - bytes.startIndex)
            }
            if let length = header("content-length").flatMap(Int.init) {
                guard bytes.endIndex - position >= length else { return nil }
                let body = String(decoding: bytes[position..<position + length], as: UTF8.self)
                return (Answer(statusLine: lines[0], headers: headers, body: body, chunked: false), position + length - bytes.startIndex)
            }
            guard header("transfer-encoding")?.lowercased() == "chunked" else {
                guard closed else { return nil }
                let body = String(decoding: bytes[position...], as: UTF8.self)
                return (Answer(statusLine: lines[0], headers: headers, body: body, chunked: false), bytes.endIndex - bytes.startIndex)
            }
            var body: [UInt8] = []
            while true {
                guard let lineEnd = bytes[position...].indices.first(where: { bytes[$0...].starts(with: [13, 10]) }),
                      let size = Int(String(decoding: bytes[position..<lineEnd], as: UTF8.self), radix: 16) else { return nil }
                let start = lineEnd + 2
                guard bytes.endIndex - start >= size + 2 else { return nil }
                if size == 0 {
                    return (Answer(statusLine: lines[0], headers: headers, body: String(decoding: body, as: UTF8.self), chunked: true),
                            start + 2 - bytes.startIndex)
                }
                body.append(contentsOf: bytes[start..<start + size])
                position = start + size + 2
            }
        }
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received: Received
        init(received: Received) { self.received = received }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { received.append(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { received.markClosed() }
    }
}

struct RawHTTPError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
