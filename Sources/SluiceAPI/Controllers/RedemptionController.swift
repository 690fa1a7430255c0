import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SluiceCore
import SluiceStore

/// Redemption codes (contract section 5): the admin collection `/api/redemption/...` with CSV export, and redeeming:
/// `POST /api/user/topup` (logged in), `POST /api/token/redeem` (no login) and `POST /api/token/bind` (logged in).
///
/// Statuses chosen: an unknown code is 404; a used, disabled or expired code is 409 (the code exists, its state refuses);
/// a code of the wrong kind is 400; a token bound to another account is 409.
struct RedemptionController: Sendable {
    let services: Services
    var auth: Authenticator { Authenticator(services: services) }
    var redeemer: Redeemer { Redeemer(services: services) }

    /// A code as administrators see it, the full code included.
    struct RedemptionDTO: Codable, Sendable {
        let id: Int64
        let name: String
        let kind: String
        let key: String
        let status: Int
        let quota: Int64
        let expiredTime: Int64
        let validDays: Int
        let group: String
        let fallbackGroups: [String]
        let modelLimits: String
        let createdTime: Int64
        let redeemedTime: Int64
        let usedUserId: Nullable<Int64>
        let redeemedTokenId: Nullable<Int64>

        init(_ code: Redemption) {
            id = code.id
            name = code.name
            kind = code.kind.rawValue
            key = code.code
            status = code.status
            quota = code.quota
            expiredTime = code.expiredTime
            validDays = code.validDays
            group = code.group
            fallbackGroups = code.fallbackGroups
            modelLimits = code.modelLimits.joined(separator: ",")
            createdTime = code.createdAt
            redeemedTime = code.redeemedAt
            usedUserId = Nullable(code.redeemedByUserId)
            redeemedTokenId = Nullable(code.redeemedTokenId)
        }
    }

    /// Create and update input; every field optional (an update keeps what it does not mention).
    struct RedemptionInput: Decodable, Sendable {
        let id: Int64?
        let name: String?
        let count: Int?
        let kind: String?
        let status: Int?
        let quota: Int64?
        let expiredTime: Int64?
        let validDays: Int?
        let group: String?
        let fallbackGroups: FlexibleList?
        let modelLimits: FlexibleList?
    }

    /// `{key}`: a redemption code, or an `sk-` key where the endpoint takes one.
    struct KeyInput: Decodable, Sendable {
        let key: String?
    }

    func addRoutes(to api: RouterGroup<SluiceRequestContext>) {
        let admin = api.group("redemption")
        admin.get("", use: list)
        admin.get("search", use: list)
        admin.get("export", use: export)
        admin.post("", use: create)
        admin.put("", use: update)
        admin.get(":id", use: get)
        admin.delete(":id", use: delete)
        api.post("user/topup", use: topup)
        api.post("token/redeem", use: redeemAnonymously)
        api.post("token/bind", use: bind)
    }

    // MARK: admin

    @Sendable func list(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let page = Page(number: try request.intQuery("p", "page"), size: try request.intQuery("size", "page_size", "ps"))
        let result = try await redeemer.store.list(page: page, keyword: request.query("keyword") ?? request.query("name"))
        return API.ok(Paged(items: result.items.map(RedemptionDTO.init), total: result.total, page: page.number, pageSize: page.size))
    }

    @Sendable func get(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        return API.ok(RedemptionDTO(try await existing(context)))
    }

    @Sendable func create(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let input = try await API.decode(RedemptionInput.self, from: request)
        let count = input.count ?? 1
        guard (1...Redemption.maxBatch).contains(count) else { throw APIError.badRequest("count must be between 1 and \(Redemption.maxBatch)") }
        guard let name = input.name else { throw APIError.badRequest("name is required") }
        let kindText = input.kind ?? Redemption.Kind.topup.rawValue
        guard let kind = Redemption.Kind(rawValue: kindText) else { throw APIError.badRequest("kind must be 'topup' or 'token', not '\(kindText)'") }
        guard input.quota != nil else { throw APIError.badRequest("quota is required") }
        if let status = input.status, status != Redemption.Status.unused, status != Redemption.Status.disabled {
            throw APIError.badRequest("status must be 1 (unused) or 2 (disabled)")
        }
        let now = Clock.nowSeconds()
        var template = Redemption(id: 0, name: name, kind: kind, code: "", status: input.status ?? Redemption.Status.unused, quota: 0,
                                  expiredTime: Redemption.never, validDays: 0, group: "", fallbackGroups: [], modelLimits: [],
                                  createdAt: now, redeemedAt: 0, redeemedByUserId: nil, redeemedTokenId: nil)
        try await apply(input, to: &template, now: now)
        let batch = (0..<count).map { _ -> Redemption in
            var code = template
            code.code = Redemption.newCode()
            return code
        }
        let created = try await redeemer.store.create(batch)
        return API.ok(created.map(\.code))
    }

    @Sendable func update(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let input = try await API.decode(RedemptionInput.self, from: request)
        guard let id = input.id else { throw APIError.badRequest("id is required") }
        guard var code = try await redeemer.store.find(id: id) else { throw APIError.notFound("Redemption code does not exist") }
        guard code.status != Redemption.Status.used else { throw APIError.conflict("This redemption code has already been used and cannot be changed") }
        if input.kind.map({ $0 != code.kind.rawValue }) == true { throw APIError.badRequest("kind cannot be changed; create a new code instead") }
        if let status = input.status {
            if status == Redemption.Status.used { throw APIError.badRequest("status 3 (used) is set only by redeeming the code") }
            guard status == Redemption.Status.unused || status == Redemption.Status.disabled else {
                throw APIError.badRequest("status must be 1 (unused) or 2 (disabled)")
            }
            code.status = status
        }
        try await apply(input, to: &code, now: Clock.nowSeconds())
        guard try await redeemer.store.update(code) else {
            throw APIError.conflict("This redemption code has already been used and cannot be changed")
        }
        guard let saved = try await redeemer.store.find(id: id) else { throw APIError.notFound("Redemption code does not exist") }
        return API.ok(RedemptionDTO(saved))
    }

    @Sendable func delete(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let id = try context.parameters.require("id", as: Int64.self)
        guard try await redeemer.store.delete(id: id) else { throw APIError.notFound("Redemption code does not exist") }
        return API.ok()
    }

    /// `GET /api/redemption/export?name=<batch>` or `?ids=1,2,3`: the codes as CSV with a header row.
    @Sendable func export(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let codes: [Redemption]
        let fileName: String
        if let name = request.query("name"), !name.isEmpty {
            codes = try await redeemer.store.batch(name: name)
            fileName = name
        } else if let idText = request.query("ids"), !idText.isEmpty {
            let parts = idText.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let ids = parts.compactMap { Int64($0) }
            guard ids.count == parts.count, ids.count <= 1000 else { throw APIError.badRequest("ids must be at most 1000 comma-separated code ids") }
            codes = try await redeemer.store.find(ids: ids)
            fileName = "selected"
        } else {
            throw APIError.badRequest("name or ids is required: the batch name, or comma-separated code ids")
        }
        guard !codes.isEmpty else { throw APIError.notFound("No redemption codes match") }
        var csv = "id,name,kind,key,status,quota,expired_time,valid_days,group,fallback_groups,model_limits,created_time,redeemed_time\r\n"
        for code in codes {
            let fields = [String(code.id), code.name, code.kind.rawValue, code.code, String(code.status), String(code.quota),
                          String(code.expiredTime), String(code.validDays), code.group, code.fallbackGroups.joined(separator: ","),
                          code.modelLimits.joined(separator: ","), String(code.createdAt), String(code.redeemedAt)]
            csv += fields.map(Self.csvField).joined(separator: ",") + "\r\n"
        }
        let safeName = String(fileName.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.prefix(40))
        var headers = HTTPFields()
        headers[.contentType] = "text/csv; charset=utf-8"
        headers[.contentDisposition] = "attachment; filename=\"redemptions-\(safeName).csv\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: csv)))
    }

    /// One CSV field: quoted when it holds a separator, quote or line break; a leading `= + - @` is defused so that
    /// spreadsheets do not run it as a formula.
    static func csvField(_ text: String) -> String {
        var value = text
        if let first = value.first, "=+-@\t\r".contains(first), Int64(value) == nil { value = "'" + value }
        guard value.contains(where: { ",\"\r\n".contains($0) }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// The code named by the `:id` parameter, or 404.
    private func existing(_ context: SluiceRequestContext) async throws -> Redemption {
        guard let id = context.parameters.get("id", as: Int64.self), let code = try await redeemer.store.find(id: id) else {
            throw APIError.notFound("Redemption code does not exist")
        }
        return code
    }

    /// Validates and applies the fields `input` mentions. Group, fallback groups, model limits and validity apply to
    /// `token` codes only and are cleared on `topup` codes.
    private func apply(_ input: RedemptionInput, to code: inout Redemption, now: Int64) async throws {
        if let name = input.name {
            try Redemption.validateName(name)
            code.name = name
        }
        if let quota = input.quota {
            guard quota > 0 else { throw APIError.badRequest("quota must be a positive number of quota units") }
            guard quota <= Redemption.maxQuota else { throw APIError.badRequest("quota must be at most \(Redemption.maxQuota)") }
            code.quota = quota
        }
        if let expired = input.expiredTime {
            // 0 is new-api's "never"; the contract's is -1.
            let normalized = expired == 0 ? Redemption.never : expired
            guard normalized == Redemption.never || normalized > now else {
                throw APIError.badRequest("expired_time must be in the future, or -1 for never")
            }
            code.expiredTime = normalized
        }
        if let days = input.validDays {
            guard (0...Redemption.maxValidDays).contains(days) else {
                throw APIError.badRequest("valid_days must be between 0 (never expires) and \(Redemption.maxValidDays)")
            }
            code.validDays = days
        }
        if let group = input.group {
            if !group.isEmpty, try await services.groups.find(name: group) == nil {
                throw APIError.badRequest("group: unknown group '\(group)'")
            }
            code.group = group
        }
        if let fallbacks = input.fallbackGroups {
            guard fallbacks.values.count <= Token.maxFallbackGroups else {
                throw APIError.badRequest("fallback_groups: at most \(Token.maxFallbackGroups) fallback groups")
            }
            for group in fallbacks.values where try await services.groups.find(name: group) == nil {
                throw APIError.badRequest("fallback_groups: unknown group '\(group)'")
            }
            code.fallbackGroups = fallbacks.values
        }
        if let models = input.modelLimits {
            guard models.values.count <= 1000, models.values.allSatisfy({ $0.count <= 200 }) else {
                throw APIError.badRequest("model_limits: too many or too long model names")
            }
            code.modelLimits = models.values
        }
        let primary = code.group.isEmpty ? Group.defaultName : code.group
        if code.fallbackGroups.contains(primary) {
            throw APIError.badRequest("fallback_groups must not repeat the primary group '\(primary)'")
        }
        if code.kind == .topup {
            code.validDays = 0
            code.group = ""
            code.fallbackGroups = []
            code.modelLimits = []
        }
    }

    // MARK: redeeming

    /// `POST /api/user/topup {key}`: a `topup` code credits the caller's balance (`data`: the quota credited);
    /// a `token` code issues an independent token bound to the caller (`data`: the token, full key).
    @Sendable func topup(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        let code = try await redeemer.code(of: request, context: context)
        let outcome = try await redeemer.redeem(code, userId: user.id, kinds: [.topup, .token], request: request, context: context)
        if let token = outcome.token { return API.ok(TokenController.TokenDTO(token, revealKey: true)) }
        return API.ok(outcome.credited)
    }

    /// `POST /api/token/redeem {key}` (no login): a `token` code issues an independent token bound to no account
    /// (`data`: the token, full key).
    @Sendable func redeemAnonymously(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let code = try await redeemer.code(of: request, context: context)
        let outcome = try await redeemer.redeem(code, userId: nil, kinds: [.token], request: request, context: context)
        guard let token = outcome.token else { throw APIError.badRequest(RedemptionRefusal.wrongKind(.topup).message) }
        return API.ok(TokenController.TokenDTO(token, revealKey: true))
    }

    /// `POST /api/token/bind {key}`: binds an unbound independent token, named by its `sk-` key or by the code that issued
    /// it, to the caller (`data`: the token, masked). An unused `token` code is redeemed straight onto the account.
    /// Binding one's own token again is a no-op; a token held by another account is 409.
    @Sendable func bind(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        let key = try await redeemer.code(of: request, context: context)
        let token: Token
        switch try await redeemer.resolve(key, request: request, context: context) {
        case nil:
            throw APIError.notFound(key.hasPrefix("sk-") ? "Token does not exist" : RedemptionRefusal.unknown.message)
        case .token(let found):
            token = found
        case .unusedCode:
            let outcome = try await redeemer.redeem(key, userId: user.id, kinds: [.token], request: request, context: context)
            guard let issued = outcome.token else { throw APIError.badRequest(RedemptionRefusal.wrongKind(.topup).message) }
            return API.ok(TokenController.TokenDTO(issued))
        }
        if token.userId == user.id { return API.ok(TokenController.TokenDTO(token)) }
        guard token.independent else { throw APIError.conflict("This token belongs to another account") }
        guard token.userId == nil, try await services.tokens.bind(id: token.id, to: user.id) else {
            throw APIError.conflict("This token is already bound to another account")
        }
        services.changes.tokenChanged(token.id)
        await redeemer.log(LogEntry.Kind.manage, userId: user.id, token: token, quota: 0,
                           content: "Bound independent token #\(token.id) '\(token.name)' to user '\(user.username)' (#\(user.id))",
                           request: request, context: context)
        await services.settleReads()
        guard let saved = try await services.tokens.find(id: token.id, userId: user.id) else { throw APIError.notFound("Token does not exist") }
        return API.ok(TokenController.TokenDTO(saved))
    }
}

/// Redeeming and resolving codes, shared by the redemption endpoints and token login: throttling of guesses,
/// the conditional redemption, its log row and its change announcements.
struct Redeemer: Sendable {
    let services: Services

    /// The code store (a thin value over the shared database).
    var store: RedemptionStore { RedemptionStore(database: services.database, secrets: services.secrets) }

    /// What a key or code names.
    enum Resolved {
        /// An existing token: by its `sk-` key, or the token a used code issued.
        case token(Token)
        /// A `token` code not redeemed yet.
        case unusedCode(Redemption)
    }

    /// The trimmed `key` of a `{key}` body; 400 when missing, 429 while the caller's address has guessed wrong too often.
    func code(of request: Request, context: SluiceRequestContext) async throws -> String {
        let input = try await API.decode(RedemptionController.KeyInput.self, from: request, limit: 4096)
        guard let key = input.key?.trimmingCharacters(in: .whitespacesAndNewlines), !key.isEmpty else {
            throw APIError.badRequest("key is required")
        }
        guard key.count <= 200 else { throw APIError.badRequest("key is too long") }
        if let wait = services.loginFailuresByAddress.retryAfter(addressKey(request, context: context)) {
            throw APIError.tooMany("Too many wrong codes or keys; try again in \(wait) seconds", retryAfter: wait)
        }
        return key
    }

    /// Counts a guess that matched nothing against the caller's address.
    func recordMiss(_ request: Request, context: SluiceRequestContext) {
        services.loginFailuresByAddress.record(addressKey(request, context: context))
    }

    private func addressKey(_ request: Request, context: SluiceRequestContext) -> String {
        "addr:" + Authenticator(services: services).clientAddress(request, context: context)
    }

    /// What `key` names: the token of an `sk-` key, the token a used code issued, or an unused `token` code; nil (and a
    /// miss counted against the address) when it matches nothing. 400 for a top-up code, 409 for a disabled or expired
    /// unused code, 404 when the token a used code issued has been deleted.
    func resolve(_ key: String, request: Request, context: SluiceRequestContext) async throws -> Resolved? {
        if key.hasPrefix("sk-") {
            guard let token = try await services.tokens.find(key: key) else {
                recordMiss(request, context: context)
                return nil
            }
            return .token(token)
        }
        guard let code = try await store.find(code: key) else {
            recordMiss(request, context: context)
            return nil
        }
        guard code.kind == .token else { throw APIError.badRequest(RedemptionRefusal.wrongKind(.topup).message) }
        switch code.status {
        case Redemption.Status.used:
            guard let tokenId = code.redeemedTokenId, let token = try await services.tokens.find(id: tokenId, userId: nil) else {
                throw APIError.notFound("The token this code issued no longer exists")
            }
            return .token(token)
        case Redemption.Status.disabled:
            throw APIError.conflict(RedemptionRefusal.disabled.message)
        default:
            if code.isExpired(now: Clock.nowSeconds()) { throw APIError.conflict(RedemptionRefusal.expired.message) }
            return .unusedCode(code)
        }
    }

    /// Redeems `code` for `userId` (nil: a token bound to no account), logs it (type topup) and announces the change.
    /// Refusals become 404 (unknown), 409 (used, disabled, expired) or 400 (wrong kind).
    func redeem(_ code: String, userId: Int64?, kinds: Set<Redemption.Kind>, request: Request,
                context: SluiceRequestContext) async throws -> RedemptionStore.Outcome {
        let outcome: RedemptionStore.Outcome
        do {
            outcome = try await store.redeem(code: code, userId: userId, kinds: kinds, newKey: RandomSecret.apiKey())
        } catch let refusal as RedemptionRefusal {
            switch refusal {
            case .unknown:
                recordMiss(request, context: context)
                throw APIError.notFound(refusal.message)
            case .used, .disabled, .expired: throw APIError.conflict(refusal.message)
            case .wrongKind: throw APIError.badRequest(refusal.message)
            }
        }
        let redemption = outcome.redemption
        if let userId, redemption.kind == .topup { services.changes.userChanged(userId) }
        let content: String
        switch (outcome.token, userId) {
        case (let token?, nil):
            content = "Redeemed code #\(redemption.id) ('\(redemption.name)'): independent token #\(token.id) with \(redemption.quota) quota, bound to no account"
        case (let token?, let userId?):
            content = "Redeemed code #\(redemption.id) ('\(redemption.name)'): independent token #\(token.id) with \(redemption.quota) quota, bound to user #\(userId)"
        case (nil, _):
            content = "Redeemed top-up code #\(redemption.id) ('\(redemption.name)'): +\(outcome.credited) quota"
        }
        await log(LogEntry.Kind.topup, userId: userId, token: outcome.token, quota: redemption.quota, content: content,
                  request: request, context: context)
        return outcome
    }

    /// Writes a management log row (redemption or binding): who, which token, when, from where.
    func log(_ type: Int, userId: Int64?, token: Token?, quota: Int64, content: String, request: Request, context: SluiceRequestContext) async {
        let entry = LogEntry(createdAt: Clock.nowSeconds(), type: type, userId: userId, tokenId: token?.id, tokenName: token?.name ?? "",
                             modelName: "", group: token?.group ?? "", channelId: nil, channelName: "", promptTokens: 0, completionTokens: 0,
                             quota: quota, useTimeMs: 0, isStream: false,
                             ip: Authenticator(services: services).clientAddress(request, context: context), content: content,
                             requestId: context.requestId)
        do {
            try await services.logs.insert(entry)
        } catch {
            services.logger.error("could not log a redemption or binding", metadata: ["error": "\(error)", "content": "\(content)"])
        }
    }
}
