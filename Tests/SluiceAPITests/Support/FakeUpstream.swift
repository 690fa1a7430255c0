import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SluiceCore
import Synchronization

/// An in-process upstream provider on a loopback port, speaking OpenAI or Anthropic, with scriptable behaviour.
final class FakeUpstream: Sendable {
    /// What the next calls do.
    enum Behaviour: Sendable {
        /// Answer normally with this usage (nil: no usage in the answer).
        case answer(prompt: Int?, completion: Int)
        /// Answer this HTTP status with an error body.
        case status(Int)
        /// Never answer (until the test ends).
        case hang
        /// Stream `chunks` pieces, waiting `delayMs` between them; reports usage unless `usage` is false.
        case slowStream(chunks: Int, delayMs: Int, usage: Bool)
        /// Stream `chunks` events at once, each carrying about `bytes` of text: a large answer in few events.
        case largeStream(chunks: Int, bytes: Int)
        /// Send part of a stream, then drop the connection.
        case resetMidStream
        /// Answer 200 with a body that is not JSON.
        case malformed
    }

    /// One request as the upstream saw it.
    struct Seen: Sendable {
        let path: String
        let headers: HTTPFields
        let body: JSON
    }

    let port: Int
    private let group: ServiceGroup
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts the server and waits until it listens.
    static func start(_ behaviour: Behaviour = .answer(prompt: 10, completion: 5)) async throws -> FakeUpstream {
        let box = StateBox(behaviour)
        let router = Router()
        router.post("/v1/chat/completions") { request, _ in try await box.handle(request, kind: StateBox.Kind.chat) }
        router.post("/v1/completions") { request, _ in try await box.handle(request, kind: StateBox.Kind.completions) }
        router.post("/v1/embeddings") { request, _ in try await box.handle(request, kind: StateBox.Kind.embeddings) }
        router.post("/v1/messages") { request, _ in try await box.handle(request, kind: StateBox.Kind.messages) }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "fake-upstream")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        Task { try? await group.run() }
        var port = 0
        for await value in stream { port = value; break }
        return FakeUpstream(port: port, group: group, box: box)
    }

    private let box: StateBox

    private init(port: Int, group: ServiceGroup, box: StateBox) {
        self.port = port
        self.group = group
        self.box = box
    }

    func set(_ behaviour: Behaviour) { box.state.withLock { $0.behaviour = behaviour } }
    var seen: [Seen] { box.state.withLock { $0.seen } }
    var calls: Int { box.state.withLock { $0.seen.count } }
    var cancelledStreams: Int { box.state.withLock { $0.cancelledStreams } }
    var completedStreams: Int { box.state.withLock { $0.completedStreams } }

    func stop() async { await group.triggerGracefulShutdown() }

    final class StateBox: Sendable {
        let state: Mutex<(behaviour: Behaviour, seen: [Seen], cancelledStreams: Int, completedStreams: Int)>
        init(_ behaviour: Behaviour) {
            state = Mutex((behaviour, [], 0, 0))
        }

        enum Kind { case chat, completions, embeddings, messages }

        func handle(_ request: Request, kind: Kind) async throws -> Response {
            let bytes = try await request.body.collect(upTo: 64 << 20)
            let body = (try? JSON.parse(bytes.readableBytesView)) ?? .null
            let behaviour = state.withLock { state -> Behaviour in
                state.seen.append(Seen(path: request.uri.path, headers: request.headers, body: body))
                return state.behaviour
            }
            let model = body["model"].string ?? "unknown"
            let stream = body["stream"].bool ?? false
            switch behaviour {
            case .status(let code):
                let error: JSON = kind == .messages
                    ? .object([("type", .string("error")), ("error", .object([("type", .string("api_error")), ("message", .string("upstream says \(code)"))]))])
                    : .object([("error", .object([("message", .string("upstream says \(code)")), ("type", .string("upstream_error")), ("code", .null)]))])
                return Response(status: .init(code: code), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: error.serialized())))
            case .hang:
                try await Task.sleep(for: .seconds(60))
                return Response(status: .ok)
            case .malformed:
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{not json")))
            case .answer(let prompt, let completion):
                if stream { return streamResponse(kind: kind, model: model, chunks: 3, delayMs: 0, usage: prompt.map { ($0, completion) }, body: body) }
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(bytes: Self.whole(kind: kind, model: model, prompt: prompt, completion: completion).serialized())))
            case .slowStream(let chunks, let delayMs, let usage):
                return streamResponse(kind: kind, model: model, chunks: chunks, delayMs: delayMs, usage: usage ? (10, chunks) : nil, body: body)
            case .largeStream(let chunks, let bytes):
                return streamResponse(kind: kind, model: model, chunks: chunks, delayMs: 0, usage: (10, chunks), body: body,
                                      padding: String(repeating: "x", count: bytes))
            case .resetMidStream:
                return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: Self.chunk(kind: kind, model: model, text: "partial ", index: 0)))
                    try await Task.sleep(for: .milliseconds(50))
                    throw CancellationError()
                })
            }
        }

        static func whole(kind: Kind, model: String, prompt: Int?, completion: Int) -> JSON {
            var usage: JSON = .null
            switch kind {
            case .messages:
                if let prompt { usage = .object([("input_tokens", .int(Int64(prompt))), ("output_tokens", .int(Int64(completion)))]) }
                var body: JSON = .object([("id", .string("msg_1")), ("type", .string("message")), ("role", .string("assistant")), ("model", .string(model)),
                                          ("content", .array([.object([("type", .string("text")), ("text", .string("Hello from the fake"))])])),
                                          ("stop_reason", .string("end_turn")), ("stop_sequence", .null)])
                if prompt != nil { body["usage"] = usage }
                return body
            case .embeddings:
                if let prompt { usage = .object([("prompt_tokens", .int(Int64(prompt))), ("total_tokens", .int(Int64(prompt)))]) }
                var body: JSON = .object([("object", .string("list")), ("model", .string(model)),
                                          ("data", .array([.object([("object", .string("embedding")), ("index", .int(0)), ("embedding", .array([.double(0.5), .double(-0.25)]))])]))])
                if prompt != nil { body["usage"] = usage }
                return body
            case .chat, .completions:
                if let prompt { usage = .object([("prompt_tokens", .int(Int64(prompt))), ("completion_tokens", .int(Int64(completion))), ("total_tokens", .int(Int64(prompt + completion)))]) }
                let choice: JSON = kind == .chat
                    ? .object([("index", .int(0)), ("message", .object([("role", .string("assistant")), ("content", .string("Hello from the fake"))])), ("finish_reason", .string("stop"))])
                    : .object([("index", .int(0)), ("text", .string("Hello from the fake")), ("finish_reason", .string("stop"))])
                var body: JSON = .object([("id", .string("chatcmpl-1")), ("object", .string(kind == .chat ? "chat.completion" : "text_completion")),
                                          ("created", .int(1)), ("model", .string(model)), ("choices", .array([choice]))])
                if prompt != nil { body["usage"] = usage }
                return body
            }
        }

        static func chunk(kind: Kind, model: String, text: String, index: Int) -> String {
            if kind == .messages {
                let delta: JSON = .object([("type", .string("content_block_delta")), ("index", .int(0)),
                                           ("delta", .object([("type", .string("text_delta")), ("text", .string(text))]))])
                return SSEEvent(event: "content_block_delta", data: delta.text).wire
            }
            let chunk: JSON = .object([("id", .string("chatcmpl-1")), ("object", .string("chat.completion.chunk")), ("created", .int(1)),
                                       ("model", .string(model)),
                                       ("choices", .array([.object([("index", .int(0)), ("delta", .object([("content", .string(text))])), ("finish_reason", .null)])]))])
            return SSEEvent(data: chunk.text).wire
        }

        func streamResponse(kind: Kind, model: String, chunks: Int, delayMs: Int, usage: (Int, Int)?, body: JSON,
                            padding: String = "") -> Response {
            let includeUsage = body["stream_options"]["include_usage"].bool ?? false
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                do {
                    if kind == .messages {
                        let start: JSON = .object([("type", .string("message_start")), ("message", .object([
                            ("id", .string("msg_1")), ("type", .string("message")), ("role", .string("assistant")), ("model", .string(model)),
                            ("content", .array([])), ("usage", .object([("input_tokens", .int(Int64(usage?.0 ?? 0))), ("output_tokens", .int(1))]))]))])
                        try await writer.write(ByteBuffer(string: SSEEvent(event: "message_start", data: start.text).wire))
                        let blockStart: JSON = .object([("type", .string("content_block_start")), ("index", .int(0)),
                                                        ("content_block", .object([("type", .string("text")), ("text", .string(""))]))])
                        try await writer.write(ByteBuffer(string: SSEEvent(event: "content_block_start", data: blockStart.text).wire))
                    }
                    for index in 0..<chunks {
                        if delayMs > 0, index > 0 { try await Task.sleep(for: .milliseconds(delayMs)) }
                        try await writer.write(ByteBuffer(string: Self.chunk(kind: kind, model: model, text: "word\(index) \(padding)", index: index)))
                    }
                    if kind == .messages {
                        try await writer.write(ByteBuffer(string: SSEEvent(event: "content_block_stop", data: #"{"type":"content_block_stop","index":0}"#).wire))
                        var delta: JSON = .object([("type", .string("message_delta")), ("delta", .object([("stop_reason", .string("end_turn")), ("stop_sequence", .null)]))])
                        if let usage { delta["usage"] = .object([("output_tokens", .int(Int64(usage.1)))]) }
                        try await writer.write(ByteBuffer(string: SSEEvent(event: "message_delta", data: delta.text).wire))
                        try await writer.write(ByteBuffer(string: SSEEvent(event: "message_stop", data: #"{"type":"message_stop"}"#).wire))
                    } else {
                        let finish: JSON = .object([("id", .string("chatcmpl-1")), ("object", .string("chat.completion.chunk")), ("created", .int(1)), ("model", .string(model)),
                                                    ("choices", .array([.object([("index", .int(0)), ("delta", .object([])), ("finish_reason", .string("stop"))])]))])
                        try await writer.write(ByteBuffer(string: SSEEvent(data: finish.text).wire))
                        if let usage, includeUsage {
                            let usageChunk: JSON = .object([("id", .string("chatcmpl-1")), ("object", .string("chat.completion.chunk")), ("created", .int(1)),
                                                            ("model", .string(model)), ("choices", .array([])),
                                                            ("usage", .object([("prompt_tokens", .int(Int64(usage.0))), ("completion_tokens", .int(Int64(usage.1))),
                                                                               ("total_tokens", .int(Int64(usage.0 + usage.1)))]))])
                            try await writer.write(ByteBuffer(string: SSEEvent(data: usageChunk.text).wire))
                        }
                        try await writer.write(ByteBuffer(string: SSEEvent(data: "[DONE]").wire))
                    }
                    try await writer.finish(nil)
                    self.state.withLock { $0.completedStreams += 1 }
                } catch {
                    self.state.withLock { $0.cancelledStreams += 1 }
                    throw error
                }
            })
        }
    }
}
