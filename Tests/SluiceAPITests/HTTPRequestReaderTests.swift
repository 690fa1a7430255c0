import NIOCore
import NIOHTTP1
@testable import SluiceAPI
import SluiceRelay
import Testing

/// The server's request reader: every request is fed whole, cut in two at every byte, and byte by byte, and must read
/// the same each way; requests that cannot be read fail with their status.
@Suite struct HTTPRequestReaderTests {
    /// What the reader gave for the requests in `pieces`: one line per part.
    static func read(_ pieces: [String]) -> (parts: [String], failure: HTTPRequestReader.Failure?) {
        var reader = HTTPRequestReader()
        var buffer = ByteBuffer()
        var parts: [String] = []
        var body = ""
        do {
            for piece in pieces {
                buffer.writeString(piece)
                while let part = try reader.next(&buffer) {
                    switch part {
                    case .head(let head):
                        let headers = head.headers.all.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
                        parts.append("\(head.method.rawValue) \(head.uri) \(head.version) keepAlive=\(head.keepAlive) length=\(head.length.map(String.init) ?? "chunked") continue=\(head.expectContinue) [\(headers)]")
                    case .body(let bytes):
                        #expect(bytes.readableBytes > 0, "no empty pieces")
                        body += String(buffer: bytes)
                    case .end:
                        parts.append("body=\(body)")
                        body = ""
                    }
                }
            }
        } catch {
            return (parts, error)
        }
        return (parts, nil)
    }

    static func check(_ text: String, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let bytes = Array(text.utf8)
        var ways: [[String]] = [[text], bytes.map { String(decoding: [$0], as: UTF8.self) }]
        for cut in 1..<bytes.count { ways.append([String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]) }
        for pieces in ways {
            let read = read(pieces)
            #expect(read.failure == nil, "fed as \(pieces.count) pieces: \(read.failure?.why ?? "")", sourceLocation: sourceLocation)
            #expect(read.parts == expected, "fed as \(pieces.count) pieces", sourceLocation: sourceLocation)
            if read.parts != expected { return }
        }
    }

    @Test func pipelinedRequestsWithEveryFraming() {
        Self.check("POST /v1/chat/completions HTTP/1.1\r\nHost: s\r\nAuthorization: Bearer sk-1\r\nContent-Length: 5\r\n\r\nhello"
                   + "GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n"
                   + "POST /x?y=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
                   + "\r\nGET / HTTP/1.0\r\n\r\n", [
            "POST /v1/chat/completions HTTP/1.1 keepAlive=true length=5 continue=false [Host=s,Authorization=Bearer sk-1,Content-Length=5]",
            "body=hello",
            "GET /healthz HTTP/1.1 keepAlive=true length=0 continue=false [Host=s]",
            "body=",
            "POST /x?y=1 HTTP/1.1 keepAlive=true length=chunked continue=true [Transfer-Encoding=chunked,Expect=100-continue]",
            "body=abcde",
            "GET / HTTP/1.0 keepAlive=false length=0 continue=false []",
            "body=",
        ])
    }

    @Test func whetherTheConnectionCarriesAnotherRequest() {
        Self.check("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", ["GET / HTTP/1.1 keepAlive=false length=0 continue=false [Connection=close]", "body="])
        Self.check("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ["GET / HTTP/1.0 keepAlive=true length=0 continue=false [Connection=keep-alive]", "body="])
        Self.check("GET / HTTP/1.1\nX:  y \n\n", ["GET / HTTP/1.1 keepAlive=true length=0 continue=false [X=y]", "body="])
    }

    @Test(arguments: [
        ("GET / HTTP/2.0\r\n\r\n", 505),
        ("GET /\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\n\r\n", 400),
        ("GET /a\u{7F} HTTP/1.1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n", 400),
    ])
    func requestsThatCannotBeReadFail(_ text: String, _ status: Int) {
        let whole = Self.read([text])
        #expect(whole.failure.map { Int($0.status.code) } == status, "\(whole.failure?.why ?? "no failure")")
        let bytes = Array(text.utf8)
        #expect(Self.read(bytes.map { String(decoding: [$0], as: UTF8.self) }).failure.map { Int($0.status.code) } == status)
    }

    @Test func aHeadOverTheLimitIs431() {
        let big = String(repeating: "v", count: HTTPRequestReader.maxHead)
        #expect(Self.read(["GET / HTTP/1.1\r\nX: \(big)"]).failure?.status == .requestHeaderFieldsTooLarge, "unfinished")
        #expect(Self.read(["GET / HTTP/1.1\r\nX: \(big)\r\n\r\n"]).failure?.status == .requestHeaderFieldsTooLarge)
    }

    @Test func headersAsNIOHasThem() throws {
        var reader = HTTPRequestReader()
        var buffer = ByteBuffer(string: "PATCH /api/token/ HTTP/1.1\r\nHost: s\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\n\r\n")
        guard case .head(let head) = try reader.next(&buffer) else { Issue.record("no head"); return }
        #expect(head.headers.values(name: "X-Forwarded-For") == ["10.0.0.1", "10.0.0.2"])
        let nio = head.nio
        #expect(nio.method == .PATCH)
        #expect(nio.uri == "/api/token/")
        #expect(nio.headers["x-forwarded-for"] == ["10.0.0.1", "10.0.0.2"])
        #expect(nio.isKeepAlive)
    }

    /// A relay call's headers in one pass: the first key of each kind, every `X-Forwarded-For` joined, any case.
    @Test func aRelayCallsHeadersAreFoundInOnePass() throws {
        var reader = HTTPRequestReader()
        var buffer = ByteBuffer(string: "POST /v1/messages HTTP/1.1\r\nx-forwarded-for: 10.0.0.1\r\nAUTHORIZATION: Bearer sk-a\r\n"
            + "Authorization: Bearer sk-b\r\nX-Api-Key: sk-c\r\nanthropic-beta: tools\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n"
            + "Anthropic-Version: 2023-06-01\r\nX-Other: 1\r\n\r\n")
        guard case .head(let head) = try reader.next(&buffer) else { Issue.record("no head"); return }
        let fields = RelayFields(head.headers)
        #expect(fields.key == "sk-a")
        #expect(fields.forwardedFor == "10.0.0.1, 10.0.0.2, 10.0.0.3")
        #expect(fields.anthropic.map { "\($0.0)=\($0.1)" } == ["anthropic-version=2023-06-01", "anthropic-beta=tools"])
        let none = RelayFields(HTTPHeaderLines(lines: ByteBuffer(string: "Host: x\r\n")))
        #expect(none.key == nil && none.forwardedFor == nil && none.anthropic.isEmpty)
    }

    /// The front reads the key from the head's bytes as the Hummingbird routes read it from their headers, and gives
    /// back the connection's last key when the bytes spell it.
    @Test(arguments: [nil, "sk-a", "sk-b c"] as [String?])
    func theKeyIsReadAsTheControllersReadIt(_ lastKey: String?) {
        let authorizations: [String?] = [nil, "Bearer sk-a", "bearer  sk-a\t", "BEARER sk-b c ", "Bearer", "Bearer ", "Bearer  ", "Basic sk-a",
                                         "Bearersk-a", "Bearer\tsk-a", "Bearer sk-\u{e9}", "Token sk-a"]
        let apiKeys: [String?] = [nil, "sk-a", " sk-b c\t", "", "  "]
        for authorization in authorizations {
            for apiKey in apiKeys {
                var lines = "Host: x\r\n"
                if let authorization { lines += "Authorization: \(authorization)\r\n" }
                if let apiKey { lines += "x-api-key: \(apiKey)\r\n" }
                let headers = HTTPHeaderLines(lines: ByteBuffer(string: lines))
                let fields = RelayFields(headers, lastKey: lastKey)
                // The controllers see values as HTTP hands them over: without the spaces around them.
                let expected = RelayController.key(authorization: headers.first(name: "authorization"), xApiKey: headers.first(name: "x-api-key"))
                #expect(fields.key == expected,
                        "Authorization \(String(describing: authorization)), x-api-key \(String(describing: apiKey))")
            }
        }
    }
}
