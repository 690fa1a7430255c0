import NIOCore
import SluiceCore
@testable import SluiceRelay
import SluiceTestSupport
import Testing

/// The hot path reads bodies and streams in place (JSONCursor, RequestSummary, AnswerFacts, SSEFramer). These tests
/// hold each of them to what the tree parser and the SSE parser say about the same bytes.
@Suite struct ScanTests {
    static let words = ["model", "stream", "usage", "choices", "delta", "content", "text", "é", "😀", "a\"b", "back\\slash", "line\nbreak", "tab\t",
                        "prompt_tokens", "max_tokens", "include_usage", "stream_options", "messages", "", "\u{1}"]

    static func randomJSON(_ rng: inout SplitMix64, depth: Int = 0) -> JSON {
        switch Int.random(in: 0..<(depth > 3 ? 5 : 8), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int(Int64.random(in: -1_000_000...1_000_000, using: &rng))
        case 3: return .double(Double(Int.random(in: -1000...1000, using: &rng)) / 8)
        case 4: return .string(words.randomElement(using: &rng)!)
        case 5, 6: return .object((0..<Int.random(in: 0...4, using: &rng)).map { _ in
            (words.randomElement(using: &rng)!, randomJSON(&rng, depth: depth + 1)) })
        default: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomJSON(&rng, depth: depth + 1) })
        }
    }

    static func valid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in (try? JSONCursor.read(buffer) { cursor throws(JSONError) in try cursor.skip() }) != nil }
    }

    @Test func cursorAcceptsExactlyWhatTheParserAccepts() {
        var rng = SplitMix64(seed: 1)
        let noise: [UInt8] = Array("{}[]\",:\\ 0-.eE+tfnlu\u{1}x".utf8)
        var checked = 0, malformed = 0
        for _ in 0..<3000 {
            var bytes = Self.randomJSON(&rng).serialized()
            // Damage most documents at a random place or two.
            for _ in 0..<Int.random(in: 0...2, using: &rng) where !bytes.isEmpty {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(noise.randomElement(using: &rng)!, at: at)
                default: bytes[at] = noise.randomElement(using: &rng)!
                }
            }
            let parsed = (try? JSON.parse(bytes)) != nil
            #expect(Self.valid(bytes) == parsed, "\(String(decoding: bytes, as: UTF8.self))")
            checked += 1
            if !parsed { malformed += 1 }
        }
        #expect(checked == 3000 && malformed > 500, "the corpus has both kinds")
        for text in ["", "{", "[1,]", "{\"a\" 1}", "tru", "01x", "\"abc", "{\"a\":1}x", "-", "1.", "[\"\\q\"]", "{,}", "[,1]", "{\"a\":1,}"] {
            #expect(!Self.valid(Array(text.utf8)), "\(text)")
        }
    }

    /// A reader may enter 64 containers at once; values it skips may nest as deep as the parser allows.
    @Test func cursorNestingLimits() throws {
        func nested(_ levels: Int) -> [UInt8] { Array((String(repeating: "[", count: levels) + String(repeating: "]", count: levels)).utf8) }
        func entered(_ cursor: inout JSONCursor) throws(JSONError) -> Int {
            guard try cursor.enterArray() else { return 0 }
            var deepest = 0
            while try cursor.nextElement() { deepest = max(deepest, try entered(&cursor)) }
            return deepest + 1
        }
        func enterAll(_ bytes: [UInt8]) throws(JSONError) -> Int {
            try bytes.withUnsafeBufferPointer { buffer throws(JSONError) in try JSONCursor.read(buffer) { cursor throws(JSONError) in try entered(&cursor) } }
        }
        #expect(try enterAll(nested(1)) == 1)
        #expect(try enterAll(nested(JSONCursor.maxEntered)) == JSONCursor.maxEntered)
        #expect(throws: JSONError.self) { try enterAll(nested(JSONCursor.maxEntered + 1)) }
        #expect(try enterAll(Array("[[1,[2,[]]],[],[[[3]]]]".utf8)) == 4)
        for levels in [65, 500, 511, 512, 513, 600] {
            #expect(Self.valid(nested(levels)) == ((try? JSON.parse(nested(levels))) != nil), "\(levels) levels")
        }
        #expect(Self.valid(nested(500)))
    }

    @Test func requestSummaryReadsWhatTheTreeReads() throws {
        var rng = SplitMix64(seed: 2)
        for _ in 0..<2000 {
            var members: [(String, JSON)] = []
            if Bool.random(using: &rng) { members.append(("model", Bool.random(using: &rng) ? .string(Self.words.randomElement(using: &rng)!) : Self.randomJSON(&rng))) }
            if Bool.random(using: &rng) { members.append(("stream", Bool.random(using: &rng) ? .bool(Bool.random(using: &rng)) : Self.randomJSON(&rng))) }
            if Bool.random(using: &rng) { members.append(("messages", Bool.random(using: &rng) ? .array([Self.randomJSON(&rng)]) : Self.randomJSON(&rng))) }
            if Bool.random(using: &rng) { members.append(("max_tokens", Bool.random(using: &rng) ? .int(Int64.random(in: 0...9000, using: &rng)) : Self.randomJSON(&rng))) }
            if Bool.random(using: &rng) { members.append(("max_completion_tokens", .double(Double(Int.random(in: 0...10, using: &rng)) / 2))) }
            if Bool.random(using: &rng) {
                members.append(("stream_options", Bool.random(using: &rng) ? .object([("include_usage", .bool(Bool.random(using: &rng)))]) : Self.randomJSON(&rng)))
            }
            for _ in 0..<Int.random(in: 0...3, using: &rng) { members.append(("x\(members.count)", Self.randomJSON(&rng))) }
            members.shuffle(using: &rng)
            let tree = JSON.object(members)
            let summary = try #require(try RequestSummary.scan(ByteBuffer(bytes: tree.serialized())))
            #expect(summary.model == tree["model"].string)
            #expect(summary.stream == tree["stream"].bool)
            #expect(summary.messagesIsArray == (tree["messages"].array != nil))
            #expect(summary.maxTokens == tree["max_tokens"].int)
            #expect(summary.maxCompletionTokens == tree["max_completion_tokens"].int)
            #expect(summary.hasStreamOptions == members.contains { $0.0 == "stream_options" })
            #expect(summary.includeUsage == tree["stream_options"]["include_usage"].bool)
        }
        #expect(try RequestSummary.scan(ByteBuffer(string: "[1]")) == nil)
        #expect(throws: (any Error).self) { try RequestSummary.scan(ByteBuffer(string: #"{"model":"a""#)) }
    }

    @Test func aRepeatedModelIsRefused() {
        #expect(throws: RequestSummary.DuplicateKey.self) {
            try RequestSummary.scan(ByteBuffer(string: #"{"model":"cheap","messages":[],"model":"dear"}"#))
        }
        #expect(throws: RequestSummary.DuplicateKey.self) {
            try RequestSummary.scan(ByteBuffer(string: #"{"stream":false,"stream":true}"#))
        }
    }

    @Test func editsMatchTheTreeRewrite() throws {
        let bodies = [#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi \"there\""}],"stream":true}"#,
                      #"  { "messages" : [] , "model" : "gpt-4o" , "n": 1 }  "#,
                      #"{"model":"gpt-4o","stream_options":{"include_usage":false},"messages":[]}"#]
        for text in bodies {
            let body = ByteBuffer(string: text)
            let summary = try #require(try RequestSummary.scan(body))
            for (model, addUsage) in [("gpt-4o", false), ("upstream-\"4o\"-é", false), ("gpt-4o", true), ("other", true)] {
                guard let edited = UpstreamPlan.edit(body, summary: summary, model: model, addUsageOption: addUsage) else {
                    #expect(addUsage && summary.hasStreamOptions, "only an existing stream_options needs the tree")
                    continue
                }
                var expected = try JSON.parse(text)
                expected["model"] = .string(model)
                if addUsage { expected["stream_options"] = .object([("include_usage", .bool(true))]) }
                let got = try JSON.parse(edited.readableBytesView)
                #expect(got["model"] == expected["model"] && got["stream_options"] == expected["stream_options"])
                #expect(got["messages"] == expected["messages"] && got["stream"] == expected["stream"])
                if model == "gpt-4o" && !addUsage { #expect(edited == body, "untouched bytes go up as they came") }
            }
        }
    }

    /// What the stream tracker counted before it read events in place: the tree's view of the same event.
    static func treeFacts(_ json: JSON) -> (usage: Usage?, hasChoices: Bool, choiceBytes: Int, deltaBytes: Int) {
        var bytes = 0
        for choice in json["choices"].array ?? [] {
            bytes += choice["delta"]["content"].string?.utf8.count ?? 0
            bytes += choice["text"].string?.utf8.count ?? 0
            for call in choice["delta"]["tool_calls"].array ?? [] { bytes += call["function"]["arguments"].string?.utf8.count ?? 0 }
        }
        let delta = (json["delta"]["text"].string?.utf8.count ?? 0) + (json["delta"]["partial_json"].string?.utf8.count ?? 0)
        return (Usage.from(json), !(json["choices"].array?.isEmpty ?? true), bytes, delta)
    }

    @Test func answerFactsMatchTheTree() throws {
        var rng = SplitMix64(seed: 3)
        func text() -> JSON { Bool.random(using: &rng) ? .string(Self.words.randomElement(using: &rng)! + Self.words.randomElement(using: &rng)!) : Self.randomJSON(&rng, depth: 3) }
        for _ in 0..<2000 {
            var members: [(String, JSON)] = []
            if Bool.random(using: &rng) {
                members.append(("choices", .array((0..<Int.random(in: 0...2, using: &rng)).map { _ in
                    .object([("index", .int(0)), ("delta", .object([("content", text()),
                                                                    ("tool_calls", .array([.object([("function", .object([("arguments", text())]))])]))])),
                             ("text", text())])
                })))
            }
            if Bool.random(using: &rng) {
                let names = ["prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"]
                members.append(("usage", .object(names.filter { _ in Bool.random(using: &rng) }.map { ($0, .int(Int64.random(in: 0...5000, using: &rng))) })))
            }
            if Bool.random(using: &rng) { members.append(("delta", .object([("text", text()), ("partial_json", text())]))) }
            if Bool.random(using: &rng) { members.append(("noise", Self.randomJSON(&rng))) }
            members.shuffle(using: &rng)
            let json = JSON.object(members)
            let facts = try #require(ByteBuffer(bytes: json.serialized()).withUnsafeReadableBytes { AnswerFacts.scan($0.assumingMemoryBound(to: UInt8.self)) })
            let tree = Self.treeFacts(json)
            #expect(facts.usage.usage == tree.usage)
            #expect(facts.hasChoices == tree.hasChoices)
            #expect(facts.choiceTextBytes == tree.choiceBytes)
            #expect(facts.deltaTextBytes == tree.deltaBytes)
        }
    }

    @Test func framerForwardsWholeEventsAndDropsOnlyWhatItIsTold() {
        var rng = SplitMix64(seed: 4)
        for round in 0..<300 {
            // A stream of events with one or several data lines, comments, CRLF or LF line ends.
            var stream: [UInt8] = []
            var expectedData: [String] = []
            var kept: [UInt8] = []
            for index in 0..<Int.random(in: 1...8, using: &rng) {
                let newline = Bool.random(using: &rng) ? "\r\n" : "\n"
                var event = ""
                if Int.random(in: 0..<5, using: &rng) == 0 { event += ": keep-alive" + newline }
                let lines = (0..<Int.random(in: 1...2, using: &rng)).map { line in "{\"n\":\(index),\"line\":\(line)\(index % 3 == 0 ? ",\"usage\":{}" : "")}" }
                if Bool.random(using: &rng) { event += "event: e\(index)" + newline }
                for line in lines { event += "data: " + line + newline }
                event += newline
                stream += Array(event.utf8)
                expectedData.append(lines.joined(separator: "\n"))
                if !(index % 3 == 0) { kept += Array(event.utf8) }
            }
            // Cut it at random places.
            var framer = SSEFramer()
            var seen: [String] = []
            var out: [UInt8] = []
            func visit(_ data: UnsafeBufferPointer<UInt8>) -> Bool {
                let text = String(decoding: data, as: UTF8.self)
                seen.append(text)
                return text.contains("usage")
            }
            var offset = 0
            while offset < stream.count {
                let length = min(stream.count - offset, Int.random(in: 1...40, using: &rng))
                let piece = framer.feed(ByteBuffer(bytes: stream[offset..<(offset + length)]), visit)
                out += Array(piece.readableBytesView)
                offset += length
            }
            out += Array(framer.finish(visit).readableBytesView)
            #expect(seen == expectedData, "round \(round)")
            #expect(out == kept, "round \(round)")
            // The SSE parser sees the same data.
            var parser = SSEParser()
            let parsed = (parser.feed(stream) + parser.finish()).map(\.data)
            #expect(parsed == expectedData, "round \(round)")
        }
        // A last event without its blank line still counts.
        var framer = SSEFramer()
        var seen = 0
        var out = Array(framer.feed(ByteBuffer(string: "data: {\"a\":1}\n\ndata: [DONE]"), { _ in seen += 1; return false }).readableBytesView)
        out += Array(framer.finish({ _ in seen += 1; return false }).readableBytesView)
        #expect(seen == 2)
        #expect(String(decoding: out, as: UTF8.self).hasPrefix("data: {\"a\":1}\n\ndata: [DONE]\n"))
    }
}
