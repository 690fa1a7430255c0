import Foundation
import Hummingbird
import SluiceCore
import SluiceStore

/// `/api/token/...`: a user's API keys (contract section 4).
struct TokenController: Sendable {
    let services: Services
    var auth: Authenticator { Authenticator(services: services) }

    /// A token as answers show it; `key` is masked except on create and reveal.
    struct TokenDTO: Codable, Sendable {
        let id: Int64
        let name: String
        let key: String
        let status: Int
        let userId: Nullable<Int64>
        let independent: Bool
        let remainQuota: Int64
        let usedQuota: Int64
        let unlimitedQuota: Bool
        let expiredTime: Int64
        let modelLimitsEnabled: Bool
        let modelLimits: String
        let allowIps: String
        let group: String
        let fallbackGroups: [String]
        let billingMode: String
        let rpm: Int
        let tpm: Int
        let createdTime: Int64
        let accessedTime: Int64

        init(_ token: Token, revealKey: Bool = false, now: Int64 = Clock.nowSeconds()) {
            id = token.id
            name = token.name
            key = revealKey ? token.key : RandomSecret.mask(token.key)
            status = token.effectiveStatus(now: now)
            userId = Nullable(token.userId)
            independent = token.independent
            remainQuota = token.remainQuota
            usedQuota = token.usedQuota
            unlimitedQuota = token.unlimitedQuota
            expiredTime = token.expiredTime
            modelLimitsEnabled = token.modelLimitsEnabled
            modelLimits = token.modelLimits.joined(separator: ",")
            allowIps = token.allowIPs
            group = token.group
            fallbackGroups = token.fallbackGroups
            billingMode = token.billingMode.rawValue
            rpm = token.rpm
            tpm = token.tpm
            createdTime = token.createdTime
            accessedTime = token.accessedTime
        }
    }

    /// Create and update input; every field optional (a full update keeps what it does not mention).
    struct TokenInput: Decodable, Sendable {
        let id: Int64?
        let name: String?
        let status: Int?
        let remainQuota: Int64?
        let unlimitedQuota: Bool?
        let expiredTime: Int64?
        let modelLimitsEnabled: Bool?
        let modelLimits: FlexibleList?
        let allowIps: FlexibleList?
        let group: String?
        let fallbackGroups: FlexibleList?
        let billingMode: String?
        let rpm: Int?
        let tpm: Int?
        let count: Int?
    }

    struct BatchInput: Decodable, Sendable {
        let ids: [Int64]?
    }

    struct KeyDTO: Codable, Sendable {
        let key: String
    }

    func addRoutes(to router: RouterGroup<SluiceRequestContext>) {
        router.get("", use: list)
        router.get("search", use: search)
        router.post("", use: create)
        router.put("", use: update)
        router.post("batch", use: batchDelete)
        router.get(":id", use: get)
        router.post(":id/key", use: revealKey)
        router.delete(":id", use: delete)
    }

    @Sendable func list(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        await services.settleReads()
        let page = Page(number: try request.intQuery("p", "page"), size: try request.intQuery("size", "page_size", "ps"))
        let result = try await services.tokens.list(userId: user.id, page: page)
        return API.ok(Paged(items: result.items.map { TokenDTO($0) }, total: result.total, page: page.number, pageSize: page.size))
    }

    @Sendable func search(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        await services.settleReads()
        let page = Page(number: try request.intQuery("p", "page"), size: try request.intQuery("size", "page_size", "ps"))
        let keyword = request.query("keyword") ?? request.query("token") ?? ""
        let result = try await services.tokens.list(userId: user.id, page: page, keyword: keyword)
        return API.ok(Paged(items: result.items.map { TokenDTO($0) }, total: result.total, page: page.number, pageSize: page.size))
    }

    @Sendable func get(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        await services.settleReads()
        return API.ok(TokenDTO(try await owned(context, user: user)))
    }

    @Sendable func revealKey(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        if let wait = services.keyReveals.retryAfter("u\(user.id)") {
            throw APIError.tooMany("Too many key reveals; try again in \(wait) seconds", retryAfter: wait)
        }
        services.keyReveals.record("u\(user.id)")
        let token = try await owned(context, user: user)
        await services.audit(user, "revealed the key of token \(token.id) (\(token.name))", tokenId: token.id, tokenName: token.name,
                             ip: auth.clientAddress(request, context: context))
        return API.ok(KeyDTO(key: token.key))
    }

    @Sendable func create(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        let input = try await API.decode(TokenInput.self, from: request)
        let count = input.count ?? 1
        guard (1...100).contains(count) else { throw APIError.badRequest("count must be between 1 and 100") }
        let now = Clock.nowSeconds()
        var template = Token(id: 0, userId: user.id, name: "", key: "", status: Token.Status.enabled, independent: false,
                             remainQuota: 0, usedQuota: 0, unlimitedQuota: false, expiredTime: Token.never, modelLimitsEnabled: false,
                             modelLimits: [], allowIPs: "", group: "", fallbackGroups: [], billingMode: .usage, rpm: 0, tpm: 0,
                             createdTime: now, accessedTime: 0, redemptionId: nil)
        if input.name == nil { throw APIError.badRequest("Token name cannot be empty") }
        try await apply(input, to: &template, user: user, now: now)
        if let status = input.status, status != Token.Status.enabled, status != Token.Status.disabled {
            throw APIError.badRequest("status must be 1 (enabled) or 2 (disabled)")
        }
        template.status = input.status ?? Token.Status.enabled
        let batch = (0..<count).map { index -> Token in
            var token = template
            token.key = RandomSecret.apiKey()
            if count > 1 { token.name = String("\(template.name)-\(index + 1)".prefix(Token.maxNameLength)) }
            return token
        }
        let created = try await services.tokens.create(batch)
        return API.ok(created.map { TokenDTO($0, revealKey: true, now: now) })
    }

    @Sendable func update(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        let input = try await API.decode(TokenInput.self, from: request)
        guard let id = input.id else { throw APIError.badRequest("id is required") }
        await services.settleReads()
        guard var token = try await services.tokens.find(id: id, userId: user.id) else { throw APIError.notFound("Token does not exist") }
        let now = Clock.nowSeconds()
        let statusOnly = ["true", "1"].contains(request.query("status_only")?.lowercased() ?? "")
        let previousQuota = token.remainQuota
        if statusOnly {
            guard let status = input.status else { throw APIError.badRequest("status is required") }
            try setStatus(status, on: &token, now: now)
            try await services.tokens.setStatus(id: token.id, status: token.status)
        } else {
            if token.independent { try refuseTermChanges(input, on: token) }
            try await apply(input, to: &token, user: user, now: now)
            if let status = input.status { try setStatus(status, on: &token, now: now) }
            try await services.tokens.update(token, quotaChanged: token.remainQuota != previousQuota)
        }
        services.changes.tokenChanged(token.id)
        guard let saved = try await services.tokens.find(id: token.id, userId: user.id) else { throw APIError.notFound("Token does not exist") }
        return API.ok(TokenDTO(saved, now: now))
    }

    @Sendable func delete(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        let id = try context.parameters.require("id", as: Int64.self)
        guard try await services.tokens.delete(ids: [id], userId: user.id) == 1 else { throw APIError.notFound("Token does not exist") }
        services.changes.tokenChanged(id)
        return API.ok()
    }

    @Sendable func batchDelete(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        let input = try await API.decode(BatchInput.self, from: request)
        guard let ids = input.ids, !ids.isEmpty, ids.count <= 1000 else { throw APIError.badRequest("Invalid parameters") }
        let deleted = try await services.tokens.delete(ids: ids, userId: user.id)
        for id in ids { services.changes.tokenChanged(id) }
        return API.ok(deleted)
    }

    /// The caller's token named by the `:id` parameter, or 404.
    private func owned(_ context: SluiceRequestContext, user: User) async throws -> Token {
        guard let id = context.parameters.get("id", as: Int64.self),
              let token = try await services.tokens.find(id: id, userId: user.id) else {
            throw APIError.notFound("Token does not exist")
        }
        return token
    }

    /// An independent token's terms come from the redemption code that issued it: its holder may rename it, disable it,
    /// or restrict it (allowed IPs, rate limits, billing mode), but not change its quota, expiry, groups or model limits.
    /// A field sent back unchanged (a console's full PUT) is fine.
    private func refuseTermChanges(_ input: TokenInput, on token: Token) throws {
        var changed: [String] = []
        if let quota = input.remainQuota, quota != token.remainQuota { changed.append("remain_quota") }
        if let unlimited = input.unlimitedQuota, unlimited != token.unlimitedQuota { changed.append("unlimited_quota") }
        if let expired = input.expiredTime, expired != token.expiredTime { changed.append("expired_time") }
        if let group = input.group, group != token.group { changed.append("group") }
        if let fallbacks = input.fallbackGroups, fallbacks.values != token.fallbackGroups { changed.append("fallback_groups") }
        if let enabled = input.modelLimitsEnabled, enabled != token.modelLimitsEnabled { changed.append("model_limits_enabled") }
        if let models = input.modelLimits, models.values != token.modelLimits { changed.append("model_limits") }
        guard changed.isEmpty else {
            throw APIError.badRequest("\(changed.joined(separator: ", ")) of an independent token are set by its redemption code and cannot be changed")
        }
    }

    /// Status changes: only 1 and 2 may be set; an expired or exhausted token cannot be enabled.
    private func setStatus(_ status: Int, on token: inout Token, now: Int64) throws {
        guard status == Token.Status.enabled || status == Token.Status.disabled else {
            throw APIError.badRequest("status must be 1 (enabled) or 2 (disabled)")
        }
        if status == Token.Status.enabled {
            if token.isExpired(now: now) { throw APIError.badRequest(Token.cannotEnableExpired) }
            if token.isExhausted { throw APIError.badRequest(Token.cannotEnableExhausted) }
        }
        token.status = status
    }

    /// Validates and applies the fields `input` mentions.
    func apply(_ input: TokenInput, to token: inout Token, user: User, now: Int64) async throws {
        if let name = input.name {
            try Token.validateName(name)
            token.name = name
        }
        if let quota = input.remainQuota {
            guard quota >= 0 else { throw APIError.badRequest("remain_quota must not be negative") }
            token.remainQuota = quota
        }
        if let unlimited = input.unlimitedQuota { token.unlimitedQuota = unlimited }
        if let expired = input.expiredTime {
            guard expired == Token.never || expired > now else {
                throw APIError.badRequest("expired_time must be in the future, or -1 for never")
            }
            token.expiredTime = expired
        }
        if let enabled = input.modelLimitsEnabled { token.modelLimitsEnabled = enabled }
        if let models = input.modelLimits {
            guard models.values.count <= 1000, models.values.allSatisfy({ $0.count <= 200 }) else {
                throw APIError.badRequest("model_limits: too many or too long model names")
            }
            token.modelLimits = models.values
        }
        if let ips = input.allowIps {
            let text = ips.values.joined(separator: ",")
            _ = try IPAllowList(parsing: text)
            token.allowIPs = text
        }
        if let mode = input.billingMode {
            guard let parsed = BillingMode(rawValue: mode) else {
                throw APIError.badRequest("billing_mode must be 'usage' or 'per_call', not '\(mode)'")
            }
            token.billingMode = parsed
        }
        if let rpm = input.rpm {
            guard rpm >= 0 else { throw APIError.badRequest("rpm must not be negative") }
            token.rpm = rpm
        }
        if let tpm = input.tpm {
            guard tpm >= 0 else { throw APIError.badRequest("tpm must not be negative") }
            token.tpm = tpm
        }
        if let group = input.group {
            if !group.isEmpty { try await checkGroupUsable(group, field: "group", user: user) }
            token.group = group
        }
        if let fallbacks = input.fallbackGroups {
            guard fallbacks.values.count <= Token.maxFallbackGroups else {
                throw APIError.badRequest("fallback_groups: at most \(Token.maxFallbackGroups) fallback groups")
            }
            for group in fallbacks.values { try await checkGroupUsable(group, field: "fallback_groups", user: user) }
            token.fallbackGroups = fallbacks.values
        }
        let primary = token.group.isEmpty ? user.group : token.group
        if token.fallbackGroups.contains(primary) {
            throw APIError.badRequest("fallback_groups must not repeat the primary group '\(primary)'")
        }
    }

    /// A group is usable on a token if it exists and is the user's own, selectable, or the user is an admin.
    private func checkGroupUsable(_ name: String, field: String, user: User) async throws {
        guard let group = try await services.groups.find(name: name) else {
            throw APIError.badRequest("\(field): unknown group '\(name)'")
        }
        guard group.selectable || group.name == user.group || user.isAdmin else {
            throw APIError.badRequest("\(field): you may not use group '\(name)'")
        }
    }
}
