import NIOCore
import NIOHTTP1

// The upstream client's HTTP/1.1 on the wire, written and read by hand: a call's request is one buffer, and the answer
// is read straight from the socket's bytes. NIO's encoder and decoder (llhttp with its callbacks, a header object of
// strings, a message per part) cost about 7% of the CPU of a relayed call (docs/performance.md, sixth pass).

/// A request as the bytes that go on the connection: the head, and the body after it.
struct UpstreamRequestBytes: Sendable {
    /// The request line and headers, with a small body already appended.
    let head: ByteBuffer
    /// A body too large to copy after the head, written as a buffer of its own.
    let body: ByteBuffer?
    /// Whether the answer can have a body (not to a `HEAD`).
    let expectsBody: Bool

    /// Bodies up to this size are copied after the head: one buffer, one `iovec`.
    static let copiedBody = 16 * 1024

    /// Writes `METHOD path HTTP/1.1`, `Host`, `headers` and `Content-Length`. A header or a path that would break the
    /// request's framing (a line break, a NUL, a name that is not a token) is refused instead of sent.
    static func make(method: HTTPMethod, path: String, host: String, headers: [(String, String)], body: ByteBuffer) throws(UpstreamError) -> UpstreamRequestBytes {
        guard !path.isEmpty, path.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw .invalidRequest("the request target \(path.debugDescription) is not valid in HTTP")
        }
        let small = body.readableBytes <= copiedBody
        var head = ByteBufferAllocator().buffer(capacity: 128 + path.utf8.count + headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 }
                                                + (small ? body.readableBytes : 0))
        head.writeString(method.rawValue)
        head.writeInteger(UInt8(ascii: " "))
        head.writeString(path)
        head.writeStaticString(" HTTP/1.1\r\nHost: ")
        head.writeString(host)
        for (name, value) in headers {
            guard isToken(name) else { throw .invalidRequest("the header name \(name.debugDescription) is not valid in HTTP") }
            guard value.utf8.allSatisfy({ $0 != 0x0D && $0 != 0x0A && $0 != 0 }) else {
                throw .invalidRequest("the value of the header \(name) holds a line break")
            }
            head.writeStaticString("\r\n")
            head.writeString(name)
            head.writeStaticString(": ")
            head.writeString(value)
        }
        head.writeStaticString("\r\nContent-Length: ")
        head.writeString(String(body.readableBytes))
        head.writeStaticString("\r\n\r\n")
        if small { head.writeImmutableBuffer(body) }
        return UpstreamRequestBytes(head: head, body: small ? nil : body, expectsBody: method != .HEAD)
    }

    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }
}

/// The header section of an answer, kept as the bytes that came and read when asked: the relay wants one header of
/// them (`Content-Type`), so the others are never turned into strings.
public struct UpstreamHeaders: Sendable {
    /// The header lines, each ending in LF (CR LF on the wire), checked by the parser: no folded lines, a colon in each.
    let lines: ByteBuffer

    init(lines: ByteBuffer) { self.lines = lines }

    /// The first value of the header `name` (any case), without surrounding spaces.
    public func first(name: String) -> String? {
        var found: String?
        each { header, value in
            guard found == nil, UpstreamHeaders.equalIgnoringCase(header, name) else { return }
            found = String(decoding: value, as: UTF8.self)
        }
        return found
    }

    /// Every header, in the order they came.
    public var all: [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        each { result.append((String(decoding: $0, as: UTF8.self), String(decoding: $1, as: UTF8.self))) }
        return result
    }

    private func each(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        lines.withUnsafeReadableBytes { bytes in
            var start = 0
            while start < bytes.count {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                if let (name, value) = UpstreamAnswerParser.split(line) { body(name, value) }
                start = end + 1
            }
        }
    }

    static func equalIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ name: String) -> Bool {
        var index = 0
        for expected in name.utf8 {
            guard index < bytes.count, lower(bytes[index]) == lower(expected) else { return false }
            index += 1
        }
        return index == bytes.count
    }

    @inline(__always) static func lower(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}

/// Reads HTTP/1.1 answers from a connection's bytes, as they come in pieces of any size (RFC 9112): the head once
/// whole, the body as it comes (by `Content-Length`, in chunks, or until the connection closes), and the end. An
/// answer the connection cannot safely carry another after (`Connection: close`, a body until close, both
/// `Content-Length` and `Transfer-Encoding`, bytes after the end) is reported as not reusable.
struct UpstreamAnswerParser {
    enum Event {
        case head(status: Int, headers: UpstreamHeaders)
        case body(ByteBuffer)
        /// The answer ended; `reusable`: the connection can carry the next request.
        case end(reusable: Bool)
    }

    private enum State {
        case head
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(seen: Int)
        case untilClose
        case done
    }

    /// The largest head (and the largest trailer section) accepted.
    static let maxHead = 64 * 1024
    /// The longest chunk-size line accepted (with its extensions).
    static let maxChunkLine = 4 * 1024

    private var state = State.head
    /// Bytes received and not consumed yet: a head, a chunk-size line or a chunk's end not yet whole.
    private var pending: ByteBuffer?
    /// Where the search for the end of the head resumes.
    private var scanned = 0
    private var keepAlive = true
    let expectsBody: Bool

    init(expectsBody: Bool) { self.expectsBody = expectsBody }

    /// Whether the answer has ended.
    var ended: Bool { if case .done = state { return true } else { return false } }

    /// Whether the answer's head has come.
    var headSeen: Bool { if case .head = state { return false } else { return true } }

    /// Takes the next bytes from the connection and reports what they complete. Bytes after the end are left (the
    /// end says the connection is not reusable).
    mutating func feed(_ bytes: ByteBuffer, _ emit: (Event) -> Void) throws(UpstreamError) {
        if var earlier = pending {
            earlier.writeImmutableBuffer(bytes)
            pending = earlier
        } else {
            pending = bytes
        }
        var buffer = pending!
        pending = nil
        defer { if buffer.readableBytes > 0, !ended { pending = buffer } }
        while buffer.readableBytes > 0 {
            switch state {
            case .head:
                guard try readHead(&buffer, emit) else { return }
            case .length(let remaining):
                let piece = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
                emit(.body(piece))
                if remaining == piece.readableBytes { finish(reusable: keepAlive, left: buffer, emit) } else { state = .length(remaining: remaining - piece.readableBytes) }
            case .chunkSize:
                guard let line = try Self.line(&buffer, limit: Self.maxChunkLine, what: "a chunk's size line") else { return }
                let size = try Self.chunkSize(line)
                state = size == 0 ? .trailers(seen: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let piece = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
                emit(.body(piece))
                state = remaining == piece.readableBytes ? .chunkDataEnd : .chunkData(remaining: remaining - piece.readableBytes)
            case .chunkDataEnd:
                guard let line = try Self.line(&buffer, limit: 2, what: "the end of a chunk") else { return }
                guard line.readableBytes == 0 else { throw .malformed("a chunk is longer than its size says") }
                state = .chunkSize
            case .trailers(let seen):
                let before = buffer.readableBytes
                guard let line = try Self.line(&buffer, limit: Self.maxHead - seen, what: "the trailer section") else { return }
                if line.readableBytes == 0 { finish(reusable: keepAlive, left: buffer, emit) } else {
                    state = .trailers(seen: seen + before - buffer.readableBytes)
                }
            case .untilClose:
                emit(.body(buffer.readSlice(length: buffer.readableBytes)!))
            case .done:
                return
            }
        }
    }

    /// The connection closed: an answer whose body runs until the close ends here. Any other answer not ended is cut.
    mutating func closed(_ emit: (Event) -> Void) -> Bool {
        guard case .untilClose = state else { return ended }
        state = .done
        emit(.end(reusable: false))
        return true
    }

    private mutating func finish(reusable: Bool, left: ByteBuffer, _ emit: (Event) -> Void) {
        state = .done
        emit(.end(reusable: reusable && left.readableBytes == 0))
    }

    /// One line, without its CR LF (or lone LF), once it is whole.
    private static func line(_ buffer: inout ByteBuffer, limit: Int, what: String) throws(UpstreamError) -> ByteBuffer? {
        let newline = buffer.withUnsafeReadableBytes { $0.firstIndex(of: UInt8(ascii: "\n")) }
        guard let newline else {
            if buffer.readableBytes > limit { throw .malformed("\(what) is too long") }
            return nil
        }
        guard newline <= limit else { throw .malformed("\(what) is too long") }
        var line = buffer.readSlice(length: newline + 1)!
        line.moveWriterIndex(to: line.writerIndex - 1)
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return line
    }

    private static func chunkSize(_ line: ByteBuffer) throws(UpstreamError) -> Int {
        var size = 0
        var digits = 0
        for byte in line.readableBytesView {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A") + 10)
            case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
                guard digits > 0 else { throw .malformed("a chunk's size is missing") }
                return size
            default: throw .malformed("a chunk's size is not hexadecimal")
            }
            guard size <= (Int.max - 15) / 16 else { throw .malformed("a chunk's size is too large") }
            size = size * 16 + value
            digits += 1
        }
        guard digits > 0 else { throw .malformed("a chunk's size is missing") }
        return size
    }

    /// Reads a whole head when it has come: false while it has not. Informational answers (1xx) are skipped.
    private mutating func readHead(_ buffer: inout ByteBuffer, _ emit: (Event) -> Void) throws(UpstreamError) -> Bool {
        let from = scanned
        let end: Int? = buffer.withUnsafeReadableBytes { bytes in
            var index = max(from, 0)
            while let newline = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) {
                // The head ends at an empty line: LF right after LF, or after CR LF.
                if newline + 1 < bytes.count, bytes[newline + 1] == UInt8(ascii: "\n") { return newline + 2 }
                if newline + 2 < bytes.count, bytes[newline + 1] == UInt8(ascii: "\r"), bytes[newline + 2] == UInt8(ascii: "\n") { return newline + 3 }
                index = newline + 1
            }
            return nil
        }
        guard let end else {
            if buffer.readableBytes > Self.maxHead { throw .malformed("the answer's head is larger than \(Self.maxHead) bytes") }
            // The last two bytes may begin the empty line: look at them again with what comes next.
            scanned = max(0, buffer.readableBytes - 2)
            return false
        }
        guard end <= Self.maxHead else { throw .malformed("the answer's head is larger than \(Self.maxHead) bytes") }
        scanned = 0
        let head = buffer.readSlice(length: end)!
        let parsed = try Self.parseHead(head)
        if (100..<200).contains(parsed.status) {
            guard parsed.status != 101 else { throw .malformed("the upstream switched protocols") }
            return true
        }
        keepAlive = parsed.keepAlive
        emit(.head(status: parsed.status, headers: UpstreamHeaders(lines: parsed.lines)))
        if !expectsBody || parsed.status == 204 || parsed.status == 304 {
            finish(reusable: keepAlive, left: buffer, emit)
        } else if let chunked = parsed.chunked {
            if chunked { state = .chunkSize } else { keepAlive = false; state = .untilClose }
            // Both framings named: the length is ignored, and the connection is not trusted with another request.
            if parsed.length != nil { keepAlive = false }
        } else if let length = parsed.length {
            if length == 0 { finish(reusable: keepAlive, left: buffer, emit) } else { state = .length(remaining: length) }
        } else {
            keepAlive = false
            state = .untilClose
        }
        return true
    }

    private struct Head {
        var status = 0
        var keepAlive = true
        var length: Int?
        /// nil without `Transfer-Encoding`; whether its last coding is `chunked`.
        var chunked: Bool?
        var lines = ByteBuffer()
    }

    private static func parseHead(_ head: ByteBuffer) throws(UpstreamError) -> Head {
        var result = Head()
        var failure: UpstreamError?
        head.withUnsafeReadableBytes { bytes in
            do throws(UpstreamError) {
                // The status line: HTTP/1.x SP 3DIGIT [SP reason]
                guard let firstEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) else { throw .malformed("no status line") }
                let status = UnsafeRawBufferPointer(rebasing: bytes[..<firstEnd])
                guard status.count >= 12, status.starts(with: "HTTP/1.".utf8), status[8] == UInt8(ascii: " "),
                      status[7] == UInt8(ascii: "0") || status[7] == UInt8(ascii: "1") else {
                    throw .malformed("the status line is not HTTP/1.x")
                }
                var code = 0
                for index in 9..<12 {
                    let digit = status[index]
                    guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { throw .malformed("the status code is not a number") }
                    code = code * 10 + Int(digit - UInt8(ascii: "0"))
                }
                guard code >= 100, status.count == 12 || status[12] == UInt8(ascii: " ") || status[12] == UInt8(ascii: "\r") else {
                    throw .malformed("the status code is not valid")
                }
                result.status = code
                let http10 = status[7] == UInt8(ascii: "0")
                var close = false
                var keepAliveAsked = false
                var start = firstEnd + 1
                while start < bytes.count {
                    let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n"))!
                    let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                    start = end + 1
                    if line.isEmpty || (line.count == 1 && line[0] == UInt8(ascii: "\r")) { break }
                    guard line[0] != UInt8(ascii: " "), line[0] != UInt8(ascii: "\t") else { throw .malformed("a header line is folded") }
                    guard let (name, value) = split(line) else { throw .malformed("a header line has no name") }
                    guard !value.contains(0) else { throw .malformed("a header holds a NUL") }
                    if UpstreamHeaders.equalIgnoringCase(name, "content-length") {
                        guard !value.isEmpty, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), value.count <= 18 else {
                            throw .malformed("Content-Length is not a number")
                        }
                        let length = value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
                        if let earlier = result.length, earlier != length { throw .malformed("two different Content-Length headers") }
                        result.length = length
                    } else if UpstreamHeaders.equalIgnoringCase(name, "transfer-encoding") {
                        var chunked = false
                        forEachToken(value) { chunked = UpstreamHeaders.equalIgnoringCase($0, "chunked") }
                        result.chunked = chunked
                    } else if UpstreamHeaders.equalIgnoringCase(name, "connection") {
                        forEachToken(value) { token in
                            if UpstreamHeaders.equalIgnoringCase(token, "close") { close = true }
                            if UpstreamHeaders.equalIgnoringCase(token, "keep-alive") { keepAliveAsked = true }
                        }
                    }
                }
                result.keepAlive = !close && (!http10 || keepAliveAsked)
                var lines = head
                lines.moveReaderIndex(forwardBy: firstEnd + 1)
                result.lines = lines
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return result
    }

    /// Each element of a comma-separated header value, without the spaces around it; empty elements are skipped.
    static func forEachToken(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start < value.count {
            let end = value[start...].firstIndex(of: UInt8(ascii: ",")) ?? value.count
            var from = start
            var to = end
            while from < to, value[from] == UInt8(ascii: " ") || value[from] == UInt8(ascii: "\t") { from += 1 }
            while to > from, value[to - 1] == UInt8(ascii: " ") || value[to - 1] == UInt8(ascii: "\t") { to -= 1 }
            if to > from { body(UnsafeRawBufferPointer(rebasing: value[from..<to])) }
            start = end + 1
        }
    }

    /// A header line's name and value (without the spaces around it, and without a final CR); nil without a colon or
    /// with a name that is empty or holds a space.
    static func split(_ line: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer)? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        guard !name.contains(UInt8(ascii: " ")), !name.contains(UInt8(ascii: "\t")) else { return nil }
        var from = colon + 1
        var to = line.count
        if to > from, line[to - 1] == UInt8(ascii: "\r") { to -= 1 }
        while from < to, line[from] == UInt8(ascii: " ") || line[from] == UInt8(ascii: "\t") { from += 1 }
        while to > from, line[to - 1] == UInt8(ascii: " ") || line[to - 1] == UInt8(ascii: "\t") { to -= 1 }
        return (name, UnsafeRawBufferPointer(rebasing: line[from..<to]))
    }
}
