import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SluiceCore

extension TestClientProtocol {
    /// Sets a model price (USD per 1M tokens, and per call).
    func price(_ model: String, input: Double = 2, output: Double = 8, perCall: Double? = nil, maxOutput: Int = 1000, as root: Credential) async throws {
        let callText = perCall.map { String($0) } ?? "null"
        let answer = try await call(.post, "/api/model/", #"{"model": "\#(model)", "input_price": \#(input), "output_price": \#(output), "call_price": \#(callText), "max_output_tokens": \#(maxOutput)}"#, as: root)
        guard answer.code == 200 else { throw TestSetupError("price: \(answer.text)") }
    }

    /// Adds a channel and answers its id.
    @discardableResult
    func channel(_ upstream: FakeUpstream, type: String = "openai", models: [String] = ["gpt-test"], groups: [String] = ["default"],
                 priority: Int = 0, weight: Int = 1, mapping: [String: String] = [:], name: String = "fake", key: String = "sk-upstream-secret",
                 extra: String = "", as root: Credential) async throws -> Int {
        let modelList = models.map { "\"\($0)\"" }.joined(separator: ",")
        let groupList = groups.map { "\"\($0)\"" }.joined(separator: ",")
        let mappingText = "{" + mapping.map { "\"\($0.key)\": \"\($0.value)\"" }.joined(separator: ",") + "}"
        let answer = try await call(.post, "/api/channel/", """
            {"name": "\(name)", "type": "\(type)", "base_url": "\(upstream.baseURL)", "key": "\(key)", "models": [\(modelList)],
             "groups": [\(groupList)], "priority": \(priority), "weight": \(weight), "model_mapping": \(mappingText)\(extra)}
            """, as: root)
        guard answer.code == 200, let id = answer.data["id"].int else { throw TestSetupError("channel: \(answer.text)") }
        return id
    }

    /// Gives a user a balance.
    func topUp(_ userId: Int64, quota: Int64, as root: Credential) async throws {
        let answer = try await call(.put, "/api/user/", #"{"id": \#(userId), "quota": \#(quota)}"#, as: root)
        guard answer.code == 200 else { throw TestSetupError("top-up: \(answer.text)") }
    }

    /// Creates a token and answers its key and id.
    func key(_ body: String = #"{"name": "k", "unlimited_quota": true}"#, as credential: Credential) async throws -> (key: String, id: Int) {
        let answer = try await call(.post, "/api/token/", body, as: credential)
        guard answer.code == 200, let key = answer.data[0]["key"].string, let id = answer.data[0]["id"].int else {
            throw TestSetupError("token: \(answer.text)")
        }
        return (key, id)
    }

    /// A relay call with a key.
    func relay(_ path: String, key: String?, _ body: String, headers extra: HTTPFields = [:], anthropicStyle: Bool = false) async throws -> Answer {
        var headers = extra
        if let key {
            if anthropicStyle { headers[HTTPField.Name("x-api-key")!] = key } else { headers[.authorization] = "Bearer \(key)" }
        }
        return try await call(.post, path, body, headers: headers)
    }

    /// A chat body.
    static func chat(_ model: String = "gpt-test", stream: Bool = false, maxTokens: Int? = nil, extra: String = "") -> String {
        let max = maxTokens.map { #", "max_tokens": \#($0)"# } ?? ""
        return #"{"model": "\#(model)", "messages": [{"role": "user", "content": "Say hello"}], "stream": \#(stream)\#(max)\#(extra)}"#
    }

    /// Root's credential and a user with a balance; the common start of relay tests.
    func relaySetup(_ upstream: FakeUpstream, balance: Int64 = 100_000_000, callPrice: Double? = 0.01) async throws -> (root: Credential, user: Credential, userId: Int64) {
        let root = try await loginRoot()
        try await price("gpt-test", perCall: callPrice, as: root)
        try await channel(upstream, as: root)
        let (user, userId) = try await newUser("alice")
        try await topUp(userId, quota: balance, as: root)
        return (root, user, userId)
    }
}

func chatBody(_ model: String = "gpt-test", stream: Bool = false, maxTokens: Int? = nil, extra: String = "") -> String {
    let max = maxTokens.map { #", "max_tokens": \#($0)"# } ?? ""
    return #"{"model": "\#(model)", "messages": [{"role": "user", "content": "Say hello"}], "stream": \#(stream)\#(max)\#(extra)}"#
}
