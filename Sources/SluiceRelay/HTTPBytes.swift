#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1

/// HTTP/1.1 on the wire, read by hand (RFC 9112): the pieces the upstream client's answer parser
/// (`UpstreamAnswerParser`) and the server's request reader (`HTTPRequestReader` in SluiceAPI) share.
package enum HTTPBytes {
    /// Bytes that are not HTTP/1.1, and why.
    package struct Malformed: Error, Sendable {
        package let why: String
        package init(_ why: String) { self.why = why }
    }

    /// Where `byte` first is in `bytes`, at or after `from` (memchr: a head is searched a word at a time).
    @inline(__always) package static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from: Int = 0) -> Int? {
        guard from < bytes.count, let base = bytes.baseAddress, let found = memchr(base + from, Int32(byte), bytes.count - from) else {
            return nil
        }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// One line, without its CR LF (or lone LF), once it is whole; fails when it is longer than `limit`.
    package static func line(_ buffer: inout ByteBuffer, limit: Int, what: String) throws(Malformed) -> ByteBuffer? {
        let newline = buffer.withUnsafeReadableBytes { index(of: UInt8(ascii: "\n"), in: $0) }
        guard let newline else {
            if buffer.readableBytes > limit { throw Malformed("\(what) is too long") }
            return nil
        }
        guard newline <= limit else { throw Malformed("\(what) is too long") }
        var line = buffer.readSlice(length: newline + 1)!
        line.moveWriterIndex(to: line.writerIndex - 1)
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return line
    }

    /// Where a head ends (just after its empty line), searching from `from`; nil while it has not come. `resume` is
    /// where the next search may start.
    package static func headEnd(_ buffer: ByteBuffer, from: Int) -> (end: Int?, resume: Int) {
        buffer.withUnsafeReadableBytes { bytes in
            var index = max(from, 0)
            while index < bytes.count, let newline = Self.index(of: UInt8(ascii: "\n"), in: bytes, from: index) {
                // The head ends at an empty line: LF right after LF, or after CR LF.
                if newline + 1 < bytes.count, bytes[newline + 1] == UInt8(ascii: "\n") { return (newline + 2, 0) }
                if newline + 2 < bytes.count, bytes[newline + 1] == UInt8(ascii: "\r"), bytes[newline + 2] == UInt8(ascii: "\n") {
                    return (newline + 3, 0)
                }
                index = newline + 1
            }
            // The last two bytes may begin the empty line: look at them again with what comes next.
            return (nil, max(0, bytes.count - 2))
        }
    }

    /// A chunk-size line's size (its extensions ignored).
    package static func chunkSize(_ line: ByteBuffer) throws(Malformed) -> Int {
        var size = 0
        var digits = 0
        for byte in line.readableBytesView {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A") + 10)
            case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
                guard digits > 0 else { throw Malformed("a chunk's size is missing") }
                return size
            default: throw Malformed("a chunk's size is not hexadecimal")
            }
            guard size <= (Int.max - 15) / 16 else { throw Malformed("a chunk's size is too large") }
            size = size * 16 + value
            digits += 1
        }
        guard digits > 0 else { throw Malformed("a chunk's size is missing") }
        return size
    }

    /// A header line's name and value (without the spaces around it, and without a final CR); nil without a colon or
    /// with a name that is empty or holds a space.
    package static func split(_ line: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer)? {
        // One pass to the colon, refusing a space or a tab in the name.
        var colon = 0
        while colon < line.count {
            let byte = line[colon]
            if byte == UInt8(ascii: ":") { break }
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { return nil }
            colon += 1
        }
        guard colon > 0, colon < line.count else { return nil }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        var from = colon + 1
        var to = line.count
        if to > from, line[to - 1] == UInt8(ascii: "\r") { to -= 1 }
        while from < to, line[from] == UInt8(ascii: " ") || line[from] == UInt8(ascii: "\t") { from += 1 }
        while to > from, line[to - 1] == UInt8(ascii: " ") || line[to - 1] == UInt8(ascii: "\t") { to -= 1 }
        return (name, UnsafeRawBufferPointer(rebasing: line[from..<to]))
    }

    /// Each element of a comma-separated header value, without the spaces around it; empty elements are skipped.
    package static func forEachToken(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
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

    /// Whether `bytes` spell `name` (ASCII, any case).
    package static func equalIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ name: String) -> Bool {
        guard bytes.count == name.utf8.count else { return false }
        var index = 0
        for expected in name.utf8 {
            guard lower(bytes[index]) == lower(expected) else { return false }
            index += 1
        }
        return true
    }

    /// A body up to this size is copied after its head, so that a message goes out as one buffer (one `iovec`);
    /// a larger one is written as a buffer of its own.
    package static let copiedBody = 16 * 1024

    /// Writes a header line, `CR LF name: value`: a head is written as its first line, then each field after a line
    /// break, then `CR LF CR LF`.
    package static func writeField(_ bytes: inout ByteBuffer, _ name: String, _ value: String) {
        bytes.writeStaticString("\r\n")
        bytes.writeString(name)
        bytes.writeStaticString(": ")
        bytes.writeString(value)
    }

    /// Whether `byte` may be in a token (a method, a header's name).
    package static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    @inline(__always) static func lower(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// What the headers of a message say about its framing and its connection.
    package struct Framing: Sendable {
        package var length: Int?
        /// nil without `Transfer-Encoding`; whether its last coding is `chunked`.
        package var chunked: Bool?
        package var close = false
        package var keepAlive = false
        package var expectContinue = false
    }

    /// Reads the header lines (each ending in LF) for the framing headers, checking every line: no folded lines, a
    /// colon after a name without spaces, no NUL.
    package static func framing(_ lines: UnsafeRawBufferPointer) throws(Malformed) -> Framing {
        var framing = Framing()
        var start = 0
        while start < lines.count {
            let end = index(of: UInt8(ascii: "\n"), in: lines, from: start) ?? lines.count
            let line = UnsafeRawBufferPointer(rebasing: lines[start..<end])
            start = end + 1
            if line.isEmpty || (line.count == 1 && line[0] == UInt8(ascii: "\r")) { break }
            guard line[0] != UInt8(ascii: " "), line[0] != UInt8(ascii: "\t") else { throw Malformed("a header line is folded") }
            guard let (name, value) = split(line) else { throw Malformed("a header line has no name") }
            guard index(of: 0, in: value) == nil else { throw Malformed("a header holds a NUL") }
            // The four names have four lengths: the length picks the one name to compare.
            switch name.count {
            case 14 where equalIgnoringCase(name, "content-length"):
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                    throw Malformed("Content-Length is not a number")
                }
                let length = value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
                if let earlier = framing.length, earlier != length { throw Malformed("two different Content-Length headers") }
                framing.length = length
            case 17 where equalIgnoringCase(name, "transfer-encoding"):
                var chunked = false
                forEachToken(value) { chunked = equalIgnoringCase($0, "chunked") }
                framing.chunked = chunked
            case 10 where equalIgnoringCase(name, "connection"):
                forEachToken(value) { token in
                    if equalIgnoringCase(token, "close") { framing.close = true }
                    if equalIgnoringCase(token, "keep-alive") { framing.keepAlive = true }
                }
            case 6 where equalIgnoringCase(name, "expect"):
                if equalIgnoringCase(value, "100-continue") { framing.expectContinue = true }
            default: break
            }
        }
        return framing
    }
}

/// Reads a message's body from the bytes after its head (RFC 9112, 6 and 7.1): a given length, chunks (extensions
/// and trailers allowed, and skipped), or everything until the connection closes.
package struct HTTPBodyReader: Sendable {
    package enum Framing: Sendable {
        case length(Int)
        case chunked
        case untilClose
    }

    package enum Part {
        case data(ByteBuffer)
        case end
    }

    private enum State {
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(seen: Int)
        case untilClose
        case ended
    }

    /// The longest chunk-size line accepted (with its extensions), and the largest trailer section.
    package static let maxChunkLine = 4 * 1024
    package static let maxTrailers = 64 * 1024

    private var state: State

    package init(_ framing: Framing) {
        switch framing {
        case .length(let length): state = length > 0 ? .length(remaining: length) : .ended
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    /// Whether the body has ended (an empty body has at once).
    package var ended: Bool { if case .ended = state { return true } else { return false } }

    /// Whether the body runs until the connection closes.
    package var untilClose: Bool { if case .untilClose = state { return true } else { return false } }

    /// The next piece of the body in `buffer` (consumed from it), or its end; nil when more bytes are needed. A body
    /// that runs until the close never ends here.
    package mutating func next(_ buffer: inout ByteBuffer) throws(HTTPBytes.Malformed) -> Part? {
        while true {
            switch state {
            case .length(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let piece = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
                state = remaining == piece.readableBytes ? .ended : .length(remaining: remaining - piece.readableBytes)
                return .data(piece)
            case .chunkSize:
                guard let line = try HTTPBytes.line(&buffer, limit: Self.maxChunkLine, what: "a chunk's size line") else { return nil }
                let size = try HTTPBytes.chunkSize(line)
                state = size == 0 ? .trailers(seen: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let piece = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
                state = remaining == piece.readableBytes ? .chunkDataEnd : .chunkData(remaining: remaining - piece.readableBytes)
                return .data(piece)
            case .chunkDataEnd:
                guard let line = try HTTPBytes.line(&buffer, limit: 2, what: "the end of a chunk") else { return nil }
                guard line.readableBytes == 0 else { throw HTTPBytes.Malformed("a chunk is longer than its size says") }
                state = .chunkSize
            case .trailers(let seen):
                let before = buffer.readableBytes
                guard let line = try HTTPBytes.line(&buffer, limit: Self.maxTrailers - seen, what: "the trailer section") else { return nil }
                if line.readableBytes == 0 { state = .ended } else { state = .trailers(seen: seen + before - buffer.readableBytes) }
            case .untilClose:
                guard buffer.readableBytes > 0 else { return nil }
                return .data(buffer.readSlice(length: buffer.readableBytes)!)
            case .ended:
                return .end
            }
        }
    }
}

/// The header section of a message, kept as the bytes that came and read when asked: the relay wants a few headers of
/// a call (the key, `Content-Type` of an answer), so the others are never turned into strings.
public struct HTTPHeaderLines: Sendable {
    /// The header lines, each ending in LF (CR LF on the wire), checked by the parser: no folded lines, a colon in each.
    let lines: ByteBuffer

    package init(lines: ByteBuffer) { self.lines = lines }

    /// The first value of the header `name` (any case), without surrounding spaces.
    public func first(name: String) -> String? {
        var found: String?
        each { header, value in
            guard found == nil, HTTPBytes.equalIgnoringCase(header, name) else { return }
            found = String(decoding: value, as: UTF8.self)
        }
        return found
    }

    /// Every value of the header `name`, in order.
    public func values(name: String) -> [String] {
        var found: [String] = []
        each { header, value in
            if HTTPBytes.equalIgnoringCase(header, name) { found.append(String(decoding: value, as: UTF8.self)) }
        }
        return found
    }

    /// Every header, in the order they came.
    public var all: [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        each { result.append((String(decoding: $0, as: UTF8.self), String(decoding: $1, as: UTF8.self))) }
        return result
    }

    /// The headers as NIO's `HTTPHeaders`.
    public var nio: HTTPHeaders {
        var headers = HTTPHeaders()
        each { headers.add(name: String(decoding: $0, as: UTF8.self), value: String(decoding: $1, as: UTF8.self)) }
        return headers
    }

    /// Calls `body` with each header's name and value, as bytes, in the order they came.
    package func each(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        lines.withUnsafeReadableBytes { bytes in
            var start = 0
            while start < bytes.count {
                let end = HTTPBytes.index(of: UInt8(ascii: "\n"), in: bytes, from: start) ?? bytes.count
                let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                if let (name, value) = HTTPBytes.split(line) { body(name, value) }
                start = end + 1
            }
        }
    }
}
