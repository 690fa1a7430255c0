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

    /// Writes `METHOD path HTTP/1.1`, `Host`, `headers` and `Content-Length`. A header or a path that would break the
    /// request's framing (a line break, a NUL, a name that is not a token) is refused instead of sent.
    static func make(method: HTTPMethod, path: String, host: String, headers: [(String, String)], body: ByteBuffer) throws(UpstreamError) -> UpstreamRequestBytes {
        guard !path.isEmpty, path.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw .invalidRequest("the request target \(path.debugDescription) is not valid in HTTP")
        }
        let small = body.readableBytes <= HTTPBytes.copiedBody
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
            HTTPBytes.writeField(&head, name, value)
        }
        HTTPBytes.writeField(&head, "Content-Length", String(body.readableBytes))
        head.writeStaticString("\r\n\r\n")
        if small { head.writeImmutableBuffer(body) }
        return UpstreamRequestBytes(head: head, body: small ? nil : body, expectsBody: method != .HEAD)
    }

    static func isToken(_ name: String) -> Bool { !name.isEmpty && name.utf8.allSatisfy(HTTPBytes.isTokenByte) }
}

/// Reads HTTP/1.1 answers from a connection's bytes, as they come in pieces of any size (RFC 9112): the head once
/// whole, the body as it comes (by `Content-Length`, in chunks, or until the connection closes), and the end. An
/// answer the connection cannot safely carry another after (`Connection: close`, a body until close, both
/// `Content-Length` and `Transfer-Encoding`, bytes after the end) is reported as not reusable.
struct UpstreamAnswerParser {
    enum Event {
        case head(status: Int, headers: HTTPHeaderLines)
        case body(ByteBuffer)
        /// The answer ended; `reusable`: the connection can carry the next request.
        case end(reusable: Bool)
    }

    private enum State {
        case head
        case body(HTTPBodyReader)
        case done
    }

    /// The largest head accepted.
    static let maxHead = 64 * 1024

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
        while true {
            switch state {
            case .head:
                guard buffer.readableBytes > 0, try readHead(&buffer, emit) else { return }
            case .body(var body):
                let part: HTTPBodyReader.Part?
                do { part = try body.next(&buffer) } catch { throw .malformed(error.why) }
                switch part {
                case nil:
                    state = .body(body)
                    return
                case .data(let piece)?:
                    state = .body(body)
                    emit(.body(piece))
                case .end?:
                    finish(reusable: keepAlive, left: buffer, emit)
                }
            case .done:
                return
            }
        }
    }

    /// The connection closed: an answer whose body runs until the close ends here. Any other answer not ended is cut.
    mutating func closed(_ emit: (Event) -> Void) -> Bool {
        guard case .body(let body) = state, body.untilClose else { return ended }
        state = .done
        emit(.end(reusable: false))
        return true
    }

    private mutating func finish(reusable: Bool, left: ByteBuffer, _ emit: (Event) -> Void) {
        state = .done
        emit(.end(reusable: reusable && left.readableBytes == 0))
    }

    /// Reads a whole head when it has come: false while it has not. Informational answers (1xx) are skipped.
    private mutating func readHead(_ buffer: inout ByteBuffer, _ emit: (Event) -> Void) throws(UpstreamError) -> Bool {
        let (end, resume) = HTTPBytes.headEnd(buffer, from: scanned)
        guard let end else {
            if buffer.readableBytes > Self.maxHead { throw .malformed("the answer's head is larger than \(Self.maxHead) bytes") }
            scanned = resume
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
        emit(.head(status: parsed.status, headers: HTTPHeaderLines(lines: parsed.lines)))
        let framing: HTTPBodyReader.Framing
        if !expectsBody || parsed.status == 204 || parsed.status == 304 {
            framing = .length(0)
        } else if let chunked = parsed.chunked {
            framing = chunked ? .chunked : .untilClose
            // Both framings named: the length is ignored, and the connection is not trusted with another request.
            if parsed.length != nil { keepAlive = false }
        } else if let length = parsed.length {
            framing = .length(length)
        } else {
            framing = .untilClose
        }
        if case .untilClose = framing { keepAlive = false }
        state = .body(HTTPBodyReader(framing))
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
                guard let firstEnd = HTTPBytes.index(of: UInt8(ascii: "\n"), in: bytes) else { throw .malformed("no status line") }
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
                let framing: HTTPBytes.Framing
                do throws(HTTPBytes.Malformed) { framing = try HTTPBytes.framing(UnsafeRawBufferPointer(rebasing: bytes[(firstEnd + 1)...])) } catch { throw .malformed(error.why) }
                result.length = framing.length
                result.chunked = framing.chunked
                result.keepAlive = !framing.close && (status[7] == UInt8(ascii: "1") || framing.keepAlive)
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
}
