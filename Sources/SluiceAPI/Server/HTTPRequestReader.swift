import NIOCore
import NIOHTTP1
import SluiceRelay

/// A request's head as read from the wire: the request line, and the header lines kept as bytes.
struct RequestHead {
    let method: HTTPMethod
    let uri: String
    let version: HTTPVersion
    let headers: HTTPHeaderLines
    /// Whether the connection carries another request after this one.
    let keepAlive: Bool
    /// The body's length when given; nil for a chunked body.
    let length: Int?
    let expectContinue: Bool

    /// The head as NIO's type, for the handlers above (Hummingbird's).
    var nio: HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: headers.nio)
    }
}

/// Reads HTTP/1.1 requests from a connection's bytes, one part at a time (RFC 9112): a head once whole, then the body
/// by `Content-Length` or in chunks, then the end. The caller asks for the next part when it is ready for it, so a
/// pipelined request stays unread bytes until its turn.
struct HTTPRequestReader {
    enum Part {
        case head(RequestHead)
        case body(ByteBuffer)
        case end
    }

    /// Why a request cannot be read, and the status that says so.
    struct Failure: Error {
        let status: HTTPResponseStatus
        let why: String
    }

    private enum State {
        case head
        case body(HTTPBodyReader)
    }

    /// The largest head (request line and headers) accepted.
    static let maxHead = 64 * 1024

    private var state = State.head
    private var scanned = 0

    /// The next part that `buffer` holds whole, consumed from it; nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws(Failure) -> Part? {
        while true {
            switch state {
            case .head:
                guard buffer.readableBytes > 0 else { return nil }
                // Empty lines before a request are allowed (RFC 9112, 2.2).
                if scanned == 0, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                   first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n") {
                    buffer.moveReaderIndex(forwardBy: 1)
                    continue
                }
                let (end, resume) = HTTPBytes.headEnd(buffer, from: scanned)
                guard let end else {
                    if buffer.readableBytes > Self.maxHead { throw Failure(status: .requestHeaderFieldsTooLarge, why: "The request's head is larger than \(Self.maxHead) bytes") }
                    scanned = resume
                    return nil
                }
                guard end <= Self.maxHead else { throw Failure(status: .requestHeaderFieldsTooLarge, why: "The request's head is larger than \(Self.maxHead) bytes") }
                scanned = 0
                let head = try Self.parse(buffer.readSlice(length: end)!)
                state = .body(HTTPBodyReader(head.length.map { .length($0) } ?? .chunked))
                return .head(head)
            case .body(var body):
                let part: HTTPBodyReader.Part?
                do { part = try body.next(&buffer) } catch {
                    throw Failure(status: .badRequest, why: "The request's body is not valid: \(error.why)")
                }
                switch part {
                case nil:
                    state = .body(body)
                    return nil
                case .data(let piece)?:
                    state = .body(body)
                    return .body(piece)
                case .end?:
                    state = .head
                    return .end
                }
            }
        }
    }

    /// The request line (`METHOD SP target SP HTTP/1.x`) and the headers, and the body's framing they give.
    static func parse(_ head: ByteBuffer) throws(Failure) -> RequestHead {
        var result: Result<RequestHead, Failure>!
        head.withUnsafeReadableBytes { bytes in
            result = Result { () throws(Failure) -> RequestHead in
                guard let lineEnd = HTTPBytes.index(of: UInt8(ascii: "\n"), in: bytes) else { throw Failure(status: .badRequest, why: "No request line") }
                var line = UnsafeRawBufferPointer(rebasing: bytes[..<lineEnd])
                if line.last == UInt8(ascii: "\r") { line = UnsafeRawBufferPointer(rebasing: line[..<(line.count - 1)]) }
                guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")), firstSpace > 0,
                      let lastSpace = line.lastIndex(of: UInt8(ascii: " ")), lastSpace > firstSpace + 1 else {
                    throw Failure(status: .badRequest, why: "The request line is not METHOD TARGET HTTP/1.x")
                }
                let method = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
                let target = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)..<lastSpace])
                let version = UnsafeRawBufferPointer(rebasing: line[(lastSpace + 1)...])
                guard method.allSatisfy(HTTPBytes.isTokenByte) else { throw Failure(status: .badRequest, why: "The request's method is not a token") }
                guard target.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { throw Failure(status: .badRequest, why: "The request target holds a space or a control character") }
                guard version.count == 8, version.starts(with: "HTTP/1.".utf8),
                      version[7] == UInt8(ascii: "0") || version[7] == UInt8(ascii: "1") else {
                    throw Failure(status: .httpVersionNotSupported, why: "Only HTTP/1.0 and HTTP/1.1 are served here")
                }
                let http11 = version[7] == UInt8(ascii: "1")
                let framing: HTTPBytes.Framing
                do throws(HTTPBytes.Malformed) { framing = try HTTPBytes.framing(UnsafeRawBufferPointer(rebasing: bytes[(lineEnd + 1)...])) } catch {
                    throw Failure(status: .badRequest, why: "The request's headers are not valid: \(error.why)")
                }
                let length: Int?
                switch (framing.chunked, framing.length) {
                case (.some, .some):
                    // Both framings: a request smuggled past another server would look like this.
                    throw Failure(status: .badRequest, why: "The request has both Content-Length and Transfer-Encoding")
                case (.some(true), nil): length = nil
                case (.some(false), nil): throw Failure(status: .notImplemented, why: "The request's Transfer-Encoding must end in chunked")
                case (nil, let given): length = given ?? 0
                }
                var lines = head
                lines.moveReaderIndex(forwardBy: lineEnd + 1)
                return RequestHead(method: HTTPMethod(rawValue: String(decoding: method, as: UTF8.self)),
                                   uri: String(decoding: target, as: UTF8.self),
                                   version: http11 ? .http1_1 : .http1_0,
                                   headers: HTTPHeaderLines(lines: lines),
                                   keepAlive: !framing.close && (http11 || framing.keepAlive),
                                   length: length, expectContinue: framing.expectContinue && http11)
            }
        }
        return try result.get()
    }
}
