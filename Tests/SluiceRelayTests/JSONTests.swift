import SluiceCore
import Testing

@Suite struct JSONTests {
    @Test func roundTripKeepsOrderAndKinds() throws {
        let text = #"{"model":"gpt-4o","n":1,"t":0.5,"ok":true,"none":null,"list":[1,"two",{"x":-3e2}],"s":"a\"b\\c\n\u00e9\ud83d\ude00"}"#
        let value = try JSON.parse(text)
        #expect(value["model"].string == "gpt-4o")
        #expect(value["n"].int == 1)
        #expect(value["t"].double == 0.5)
        #expect(value["ok"].bool == true)
        #expect(value["none"].isNull)
        #expect(value["list"][2]["x"].double == -300)
        #expect(value["s"].string == "a\"b\\c\né😀")
        let again = try JSON.parse(value.text)
        #expect(again == value)
        #expect(value.text.hasPrefix(#"{"model":"gpt-4o","n":1"#))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "01x", "\"abc", "{\"a\":1}x", "-", "1.", "[\"\\q\"]"])
    func malformedIsRefused(_ text: String) {
        #expect(throws: JSONError.self) { try JSON.parse(text) }
    }

    @Test func editing() throws {
        var value = try JSON.parse(#"{"model":"a","stream":true}"#)
        value["model"] = .string("b")
        value["stream_options"] = .object([("include_usage", .bool(true))])
        value.remove("stream")
        #expect(value.text == #"{"model":"b","stream_options":{"include_usage":true}}"#)
    }

    @Test func sseAcrossChunkBoundaries() {
        var parser = SSEParser()
        let wire = "event: message_start\ndata: {\"a\":1}\n\n: comment\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n"
        var events: [SSEEvent] = []
        for byte in Array(wire.utf8) { events += parser.feed([byte]) }
        events += parser.finish()
        #expect(events == [SSEEvent(event: "message_start", data: "{\"a\":1}"), SSEEvent(data: "line1\nline2"), SSEEvent(data: "[DONE]")])
        #expect(SSEEvent(event: "x", data: "a\nb").wire == "event: x\ndata: a\ndata: b\n\n")
    }

    @Test func sseWithCRLFAndNoTrailingBlankLine() {
        var parser = SSEParser()
        var events = parser.feed(Array("data: one\r\n\r\ndata: two".utf8))
        events += parser.finish()
        #expect(events.map(\.data) == ["one", "two"])
    }
}
