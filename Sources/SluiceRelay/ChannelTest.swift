import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import SluiceCore

extension RelayEngine {
    /// The result of a test call.
    public enum TestOutcome: Sendable {
        case success
        case failure(String)
    }

    /// Sends a one-token chat call for `model` to the channel; charges nothing.
    public func test(channel: SluiceCore.Channel, model: String) async -> TestOutcome {
        let upstreamModel = channel.upstreamModel(model)
        let path: String
        let body: JSON
        switch channel.type {
        case .openai:
            path = "/v1/chat/completions"
            body = .object([("model", .string(upstreamModel)), ("max_tokens", .int(1)),
                            ("messages", .array([.object([("role", .string("user")), ("content", .string("hi"))])]))])
        case .anthropic:
            path = "/v1/messages"
            body = .object([("model", .string(upstreamModel)), ("max_tokens", .int(1)),
                            ("messages", .array([.object([("role", .string("user")), ("content", .string("hi"))])]))])
        }
        var request = HTTPClientRequest(url: channel.url(path))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        switch channel.type {
        case .openai: request.headers.add(name: "Authorization", value: "Bearer \(channel.key)")
        case .anthropic:
            request.headers.add(name: "x-api-key", value: channel.key)
            request.headers.add(name: "anthropic-version", value: "2023-06-01")
        }
        request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        do {
            let client = clients.client(connectMs: channel.connectTimeoutMs, idleMs: channel.idleTimeoutMs)
            let response = try await client.execute(request, timeout: .milliseconds(Int64(min(channel.firstByteTimeoutMs, 30_000))), logger: logger)
            let bytes = try await response.body.collect(upTo: 1 << 20)
            guard (200..<300).contains(Int(response.status.code)) else {
                return .failure("HTTP \(response.status.code): \(String(buffer: bytes).prefix(300))")
            }
            guard (try? JSON.parse(bytes.readableBytesView)) != nil else { return .failure("the answer is not JSON") }
            return .success
        } catch {
            return .failure(RelayEngine.describe(error))
        }
    }
}
