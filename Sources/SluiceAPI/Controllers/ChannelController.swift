import Foundation
import Hummingbird
import SluiceCore
import SluiceRelay
import SluiceStore

/// `/api/channel/...` (admin): upstream channels, their health, and a test call.
struct ChannelController: Sendable {
    let services: Services
    var auth: Authenticator { Authenticator(services: services) }

    struct HealthDTO: Codable, Sendable {
        let status: String
        let consecutiveFailures: Int
        let totalFailures: Int
        let totalSuccesses: Int
        let restingUntil: Int64
        let lastError: String
    }

    struct ChannelDTO: Codable, Sendable {
        let id: Int64
        let name: String
        let type: String
        let baseUrl: String
        /// Masked: the upstream key is never answered in full.
        let key: String
        let models: [String]
        let modelMapping: [String: String]
        let groups: [String]
        let priority: Int
        let weight: Int
        let status: Int
        let connectTimeoutMs: Int
        let firstByteTimeoutMs: Int
        let idleTimeoutMs: Int
        let health: HealthDTO

        init(_ channel: SluiceCore.Channel, health state: ChannelHealth.State) {
            id = channel.id
            name = channel.name
            type = channel.type.rawValue
            baseUrl = channel.baseURL
            key = ChannelDTO.mask(channel.key)
            models = channel.models
            modelMapping = channel.modelMapping
            groups = channel.groups
            priority = channel.priority
            weight = channel.weight
            status = channel.status
            connectTimeoutMs = channel.connectTimeoutMs
            firstByteTimeoutMs = channel.firstByteTimeoutMs
            idleTimeoutMs = channel.idleTimeoutMs
            let now = Date().timeIntervalSince1970
            health = HealthDTO(status: state.status(now: now), consecutiveFailures: state.consecutiveFailures, totalFailures: state.totalFailures,
                               totalSuccesses: state.totalSuccesses, restingUntil: Int64(state.restingUntil), lastError: state.lastError)
        }

        static func mask(_ key: String) -> String {
            guard key.count > 8 else { return String(repeating: "*", count: key.count) }
            return key.prefix(3) + String(repeating: "*", count: 8) + key.suffix(4)
        }
    }

    struct ChannelInput: Decodable, Sendable {
        let id: Int64?
        let name: String?
        let type: String?
        let baseUrl: String?
        let key: String?
        let models: FlexibleList?
        let modelMapping: [String: String]?
        let groups: FlexibleList?
        let priority: Int?
        let weight: Int?
        let status: Int?
        let connectTimeoutMs: Int?
        let firstByteTimeoutMs: Int?
        let idleTimeoutMs: Int?
    }

    struct TestResult: Codable, Sendable {
        let ok: Bool
        let timeMs: Int
        let model: String
        let message: String
    }

    func addRoutes(to router: RouterGroup<SluiceRequestContext>) {
        router.addCollection(list: list, create: create, update: update, get: get, delete: delete)
        router.post(":id/test", use: test)
        router.get(":id/test", use: test)
    }

    @Sendable func list(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let all = try await services.channels.all().sorted { $0.id > $1.id }
        return API.ok(try Paged(all, request: request) { ChannelDTO($0, health: services.relay.health.state($0.id)) })
    }

    @Sendable func get(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let channel = try await find(context)
        return API.ok(ChannelDTO(channel, health: services.relay.health.state(channel.id)))
    }

    @Sendable func create(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let admin = try await auth.admin(request, context: context)
        let input = try await API.decode(ChannelInput.self, from: request)
        guard input.name != nil else { throw APIError.badRequest("name is required") }
        guard input.baseUrl != nil else { throw APIError.badRequest("base_url is required") }
        guard input.key != nil else { throw APIError.badRequest("key is required") }
        var channel = SluiceCore.Channel(id: 0, name: "", type: .openai, baseURL: "", key: "", models: [], modelMapping: [:],
                                         groups: [Group.defaultName], priority: 0, weight: 1, status: SluiceCore.Channel.Status.enabled)
        try apply(input, to: &channel)
        channel.id = try await services.channels.create(channel)
        await services.announce(.channels)
        await services.audit(admin, "created channel \(channel.id) (\(channel.name))", ip: auth.clientAddress(request, context: context))
        return API.ok(ChannelDTO(channel, health: services.relay.health.state(channel.id)))
    }

    @Sendable func update(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let admin = try await auth.admin(request, context: context)
        let input = try await API.decode(ChannelInput.self, from: request)
        guard let id = input.id else { throw APIError.badRequest("id is required") }
        guard var channel = try await services.channels.find(id: id) else { throw APIError.notFound("Channel does not exist") }
        try apply(input, to: &channel)
        try await services.channels.update(channel)
        services.relay.health.reset(channel.id)
        await services.announce(.channels)
        await services.audit(admin, "updated channel \(channel.id) (\(channel.name))", ip: auth.clientAddress(request, context: context))
        return API.ok(ChannelDTO(channel, health: services.relay.health.state(channel.id)))
    }

    @Sendable func delete(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let channel = try await find(context)
        try await services.channels.delete(id: channel.id)
        await services.announce(.channels)
        return API.ok()
    }

    /// Sends a one-token chat call to the channel for its first model (or `?model=`); nothing is charged.
    @Sendable func test(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let channel = try await find(context)
        guard let model = request.query("model") ?? channel.models.first else { throw APIError.badRequest("The channel serves no model to test with") }
        let started = ContinuousClock.now
        let outcome = await services.relay.test(channel: channel, model: model)
        let elapsed = ContinuousClock.now - started
        let ms = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        switch outcome {
        case .success: services.relay.health.reset(channel.id)
        case .failure(let reason): services.relay.health.failed(channel.id, error: reason)
        }
        let result: TestResult
        switch outcome {
        case .success: result = TestResult(ok: true, timeMs: ms, model: model, message: "")
        case .failure(let reason): result = TestResult(ok: false, timeMs: ms, model: model, message: reason)
        }
        return API.ok(result)
    }

    private func find(_ context: SluiceRequestContext) async throws -> SluiceCore.Channel {
        guard let id = context.parameters.get("id", as: Int64.self), let channel = try await services.channels.find(id: id) else {
            throw APIError.notFound("Channel does not exist")
        }
        return channel
    }

    private func apply(_ input: ChannelInput, to channel: inout SluiceCore.Channel) throws {
        if let name = input.name {
            guard (1...64).contains(name.count) else { throw APIError.badRequest("name must be 1 to 64 characters long") }
            channel.name = name
        }
        if let type = input.type {
            guard let kind = SluiceCore.Channel.Kind(rawValue: type) else { throw APIError.badRequest("type must be 'openai' or 'anthropic', not '\(type)'") }
            channel.type = kind
        }
        if let base = input.baseUrl {
            guard let url = URL(string: base), let scheme = url.scheme, ["http", "https"].contains(scheme.lowercased()), url.host != nil else {
                throw APIError.badRequest("base_url must be an http(s) address such as https://api.openai.com")
            }
            channel.baseURL = base
        }
        if let key = input.key {
            guard !key.isEmpty, key.count <= 4096 else { throw APIError.badRequest("key must not be empty") }
            channel.key = key
        }
        if let models = input.models { channel.models = models.values }
        if let mapping = input.modelMapping { channel.modelMapping = mapping }
        if let groups = input.groups { channel.groups = groups.values }
        if let priority = input.priority { channel.priority = priority }
        if let weight = input.weight {
            guard weight >= 0 else { throw APIError.badRequest("weight must not be negative") }
            channel.weight = weight
        }
        if let status = input.status {
            guard status == 1 || status == 2 else { throw APIError.badRequest("status must be 1 (enabled) or 2 (disabled)") }
            channel.status = status
        }
        for (field, value) in [("connect_timeout_ms", input.connectTimeoutMs), ("first_byte_timeout_ms", input.firstByteTimeoutMs),
                               ("idle_timeout_ms", input.idleTimeoutMs)] {
            if let value, !(100...3_600_000).contains(value) { throw APIError.badRequest("\(field) must be between 100 and 3600000") }
        }
        if let value = input.connectTimeoutMs { channel.connectTimeoutMs = value }
        if let value = input.firstByteTimeoutMs { channel.firstByteTimeoutMs = value }
        if let value = input.idleTimeoutMs { channel.idleTimeoutMs = value }
    }
}
