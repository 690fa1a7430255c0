import NIOCore
import NIOHTTP1
import Testing
@testable import SluiceRelay

/// The upstream client's HTTP/1.1 by hand: every answer is fed whole, cut at every byte, and byte by byte, and must
/// read the same each way.
@Suite struct UpstreamWireTests {
    /// What the parser reported of one answer.
    struct Read: Equatable {
        var status: Int?
        var headers: [String] = []
        var body = ""
        var ended = false
        var reusable = false
        var failure: String?
    }

    static func read(_ pieces: [String], expectsBody: Bool = true, close: Bool = false) -> Read {
        var parser = UpstreamAnswerParser(expectsBody: expectsBody)
        var read = Read()
        let emit = { (event: UpstreamAnswerParser.Event) in
            switch event {
            case .head(let status, let headers):
                #expect(read.status == nil, "one head")
                read.status = status
                read.headers = headers.all.map { "\($0.name)=\($0.value)" }
            case .body(let bytes):
                #expect(read.status != nil && !read.ended, "a body only between the head and the end")
                #expect(bytes.readableBytes > 0, "no empty pieces")
                read.body += String(buffer: bytes)
            case .end(let reusable):
                read.ended = true
                read.reusable = reusable
            }
        }
        do {
            for piece in pieces where !read.ended { try parser.feed(ByteBuffer(string: piece), emit) }
            if close { _ = parser.closed(emit) }
        } catch {
            read.failure = "\(error)"
        }
        return read
    }

    /// Feeds `answer` whole, cut in two at every byte, and one byte at a time: each gives `expected`.
    static func check(_ answer: String, expectsBody: Bool = true, close: Bool = false, _ expected: Read,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        let bytes = Array(answer.utf8)
        var ways: [[String]] = [[answer], bytes.map { String(decoding: [$0], as: UTF8.self) }]
        for cut in 1..<bytes.count { ways.append([String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]) }
        for pieces in ways {
            let read = read(pieces, expectsBody: expectsBody, close: close)
            #expect(read == expected, "fed as \(pieces.count) pieces", sourceLocation: sourceLocation)
            if read != expected { return }
        }
    }

    @Test func aBodyOfAGivenLengthOnAKeptConnection() {
        Self.check("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"b c\"}",
                   Read(status: 200, headers: ["Server=nginx", "Content-Type=application/json", "Content-Length=11"],
                        body: #"{"a":"b c"}"#, ended: true, reusable: true))
    }

    @Test func aChunkedBodyWithExtensionsAndTrailers() {
        Self.check("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;name=value\r\nhello\r\nA \r\n, world!!!\r\n0\r\nX-Trailer: 1\r\n\r\n",
                   Read(status: 200, headers: ["Transfer-Encoding=gzip, chunked"], body: "hello, world!!!", ended: true, reusable: true))
    }

    @Test func informationalAnswersAreSkipped() {
        Self.check("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
                   Read(status: 201, headers: ["Content-Length=2"], body: "ok", ended: true, reusable: true))
    }

    @Test func answersWithoutABody() {
        Self.check("HTTP/1.1 204 No Content\r\n\r\n", Read(status: 204, ended: true, reusable: true))
        Self.check("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", Read(status: 304, headers: ["Content-Length=10"], ended: true, reusable: true))
        Self.check("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", expectsBody: false,
                   Read(status: 200, headers: ["Content-Length=10"], ended: true, reusable: true))
        Self.check("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Read(status: 200, headers: ["Content-Length=0"], ended: true, reusable: true))
    }

    @Test func whetherTheConnectionCarriesAnotherRequest() {
        Self.check("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
                   Read(status: 200, headers: ["Connection=close", "Content-Length=1"], body: "x", ended: true, reusable: false))
        Self.check("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
                   Read(status: 200, headers: ["Content-Length=1"], body: "x", ended: true, reusable: false))
        Self.check("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx",
                   Read(status: 200, headers: ["Connection=Keep-Alive", "Content-Length=1"], body: "x", ended: true, reusable: true))
        Self.check("HTTP/1.1 200 OK\r\nConnection: upgrade, CLOSE\r\nContent-Length: 1\r\n\r\nx",
                   Read(status: 200, headers: ["Connection=upgrade, CLOSE", "Content-Length=1"], body: "x", ended: true, reusable: false))
        // Both framings: the chunks count, and the connection is not trusted again.
        Self.check("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
                   Read(status: 200, headers: ["Content-Length=3", "Transfer-Encoding=chunked"], body: "x", ended: true, reusable: false))
        // More bytes than the answer: the end says so.
        #expect(Self.read(["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n"]).reusable == false)
        #expect(Self.read(["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"]).reusable == true)
    }

    @Test func aBodyUntilTheCloseEndsThere() {
        Self.check("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", close: true,
                   Read(status: 200, headers: ["Content-Type=text/plain"], body: "all of it", ended: true, reusable: false))
        Self.check("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", close: true,
                   Read(status: 200, headers: ["Transfer-Encoding=gzip"], body: "zz", ended: true, reusable: false))
        #expect(Self.read(["HTTP/1.1 200 OK\r\n\r\nall of it"]).ended == false, "no end before the close")
        #expect(Self.read(["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"], close: true).ended == false, "a cut body does not end")
    }

    @Test func bareLineFeedsAndSpacesAroundValues() {
        Self.check("HTTP/1.1 200 OK\nContent-Type:  text/plain \t\nContent-Length:2\n\nok",
                   Read(status: 200, headers: ["Content-Type=text/plain", "Content-Length=2"], body: "ok", ended: true, reusable: true))
        Self.check("HTTP/1.1 404\r\nContent-Length: 1\r\n\r\n?", Read(status: 404, headers: ["Content-Length=1"], body: "?", ended: true, reusable: true))
    }

    @Test(arguments: [
        ("HTTP/2 200 OK\r\n\r\n", "not HTTP/1.x"),
        ("HTTP/1.1 2x0 OK\r\n\r\n", "not a number"),
        ("HTTP/1.1 200OK\r\n\r\n", "not valid"),
        ("HTTP/1.1 099 Low\r\n\r\n", "not valid"),
        ("HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n", "folded"),
        ("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "no name"),
        ("HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", "no name"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", "Content-Length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", "two different"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "hexadecimal"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", "missing"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", "longer than its size"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n", "too large"),
        ("HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
    ])
    func malformedAnswersFail(_ answer: String, _ why: String) {
        let whole = Self.read([answer])
        #expect(whole.failure?.contains(why) == true, "\(whole.failure ?? "no failure")")
        let bytes = Array(answer.utf8)
        #expect(Self.read(bytes.map { String(decoding: [$0], as: UTF8.self) }).failure?.contains(why) == true)
    }

    @Test func aHeadOrTrailerLargerThanTheLimitFails() {
        let big = String(repeating: "v", count: UpstreamAnswerParser.maxHead)
        #expect(Self.read(["HTTP/1.1 200 OK\r\nX: \(big)"]).failure?.contains("larger than") == true, "an unfinished head over the limit")
        #expect(Self.read(["HTTP/1.1 200 OK\r\nX: \(big)\r\n\r\n"]).failure?.contains("larger than") == true)
        #expect(Self.read(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \(big)\r\n\r\n"]).failure?.contains("too long") == true)
        #expect(Self.read(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;\(big)"]).failure?.contains("too long") == true)
    }

    @Test func headersAreFoundInAnyCase() throws {
        var parser = UpstreamAnswerParser(expectsBody: true)
        var found: HTTPHeaderLines?
        try parser.feed(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-TYPE:text/event-stream\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n")) { event in
            if case .head(_, let headers) = event { found = headers }
        }
        let headers = try #require(found)
        #expect(headers.first(name: "Content-Type") == "text/event-stream")
        #expect(headers.first(name: "x-a") == "1")
        #expect(headers.first(name: "content") == nil)
        #expect(headers.first(name: "content-type-x") == nil)
        #expect(headers.all.count == 4)
    }

    @Test func aRequestIsWrittenAsOneBuffer() throws {
        let request = try UpstreamRequestBytes.make(method: .POST, path: "/v1/chat/completions?x=1", host: "api.example.com",
                                                    headers: [("Authorization", "Bearer sk-1"), ("Content-Type", "application/json")],
                                                    body: ByteBuffer(string: "{}"))
        #expect(String(buffer: request.head) == "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer sk-1\r\n"
            + "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        #expect(request.body == nil)
        #expect(request.expectsBody)
        let large = ByteBuffer(repeating: 0x41, count: HTTPBytes.copiedBody + 1)
        let big = try UpstreamRequestBytes.make(method: .POST, path: "/", host: "h", headers: [], body: large)
        #expect(String(buffer: big.head) == "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \(large.readableBytes)\r\n\r\n")
        #expect(big.body == large)
        #expect(try UpstreamRequestBytes.make(method: .HEAD, path: "/", host: "h", headers: [], body: ByteBuffer()).expectsBody == false)
    }

    @Test(arguments: [
        ("/", "Authorization", "Bearer sk-1\r\nX-Injected: 1"),
        ("/", "Authorization", "Bearer sk-1\n"),
        ("/", "Bad Name", "1"),
        ("/", "", "1"),
        ("/", "X:Y", "1"),
        ("/a b", "X", "1"),
        ("/a\r\n", "X", "1"),
    ])
    func whatWouldBreakTheRequestIsRefused(_ path: String, _ name: String, _ value: String) {
        #expect(throws: UpstreamError.self) {
            _ = try UpstreamRequestBytes.make(method: .POST, path: path, host: "h", headers: [(name, value)], body: ByteBuffer())
        }
    }
}
