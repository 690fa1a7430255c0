/// One server-sent event: its `event:` name (if any) and its `data:` lines joined by newlines.
public struct SSEEvent: Sendable, Equatable {
    public var event: String?
    public var data: String

    public init(event: String? = nil, data: String) {
        self.event = event
        self.data = data
    }

    /// The event in wire form, ending with the blank line.
    public var wire: String {
        var text = ""
        if let event { text += "event: \(event)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
        return text + "\n"
    }
}

/// Splits a byte stream into server-sent events, across arbitrary chunk boundaries.
public struct SSEParser: Sendable {
    private var pending: [UInt8] = []
    private var event: String?
    private var data: [String] = []
    private var hasData = false

    public init() {}

    /// Feeds a chunk; answers the events it completed.
    public mutating func feed<Bytes: Sequence>(_ chunk: Bytes) -> [SSEEvent] where Bytes.Element == UInt8 {
        var events: [SSEEvent] = []
        for byte in chunk {
            if byte == 0x0A {
                var line = pending
                pending.removeAll(keepingCapacity: true)
                if line.last == 0x0D { line.removeLast() }
                if let completed = take(line) { events.append(completed) }
            } else {
                pending.append(byte)
            }
        }
        return events
    }

    /// Ends the stream; answers a last event not followed by a blank line.
    public mutating func finish() -> [SSEEvent] {
        var events: [SSEEvent] = []
        if !pending.isEmpty {
            let line = pending
            pending.removeAll()
            if let completed = take(line) { events.append(completed) }
        }
        if let completed = take([]) { events.append(completed) }
        return events
    }

    private mutating func take(_ line: [UInt8]) -> SSEEvent? {
        if line.isEmpty {
            defer { event = nil; data = []; hasData = false }
            return hasData ? SSEEvent(event: event, data: data.joined(separator: "\n")) : nil
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let text = String(decoding: line, as: UTF8.self)
        let field: Substring, value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            var rest = text[text.index(after: colon)...]
            if rest.first == " " { rest = rest.dropFirst() }
            value = rest
        } else {
            field = Substring(text)
            value = ""
        }
        switch field {
        case "event": event = String(value)
        case "data": data.append(String(value)); hasData = true
        default: break
        }
        return nil
    }
}
