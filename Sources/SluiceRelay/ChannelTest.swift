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
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        switch channel.type {
        case .openai: headers.append(("Authorization", "Bearer \(channel.key)"))
        case .anthropic:
            headers.append(("x-api-key", channel.key))
            headers.append(("anthropic-version", "2023-06-01"))
        }
        var timeouts = channel.upstreamTimeouts
        timeouts.firstByte = min(timeouts.firstByte, .seconds(30))
        do {
            let response = try await client.execute(UpstreamRequest(url: channel.url(path), headers: headers,
                                                                    body: ByteBuffer(bytes: body.serialized())), timeouts: timeouts)
            let bytes = try await response.body.collect(upTo: 1 << 20)
            guard (200..<300).contains(response.status) else {
                return .failure("HTTP \(response.status): \(String(buffer: bytes).prefix(300))")
            }
            guard (try? JSON.parse(bytes.readableBytesView)) != nil else { return .failure("the answer is not JSON") }
            return .success
        } catch {
            return .failure(RelayEngine.describe(error))
        }
    }
}
