import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceStore

/// Settings of the relay.
public struct RelaySettings: Sendable {
    /// How many channels of one group a call may try (nil: every channel once).
    public var channelsPerGroup: Int?
    /// Largest upstream answer read whole (non-stream calls).
    public var maxResponseBytes: Int = 64 << 20

    public init(channelsPerGroup: Int? = nil) { self.channelsPerGroup = channelsPerGroup }
}

/// Admits, routes, relays and settles calls: the request's way from key to charge.
public final class RelayEngine: Sendable {
    let keys: KeyCache
    let users: UserCache
    let catalog: Catalog
    let ledger: QuotaLedger
    let client: UpstreamClient
    public let health: ChannelHealth
    public let rateLimiter: RateLimiter
    let settings: RelaySettings
    let logger: Logger
    /// Rate windows shared with other instances (PostgreSQL); nil counts in memory.
    let sharedRates: SharedRateWindows?
    /// Prometheus metrics.
    public let metrics = SluiceMetrics()

    public init(keys: KeyCache, users: UserCache, catalog: Catalog, ledger: QuotaLedger, client: UpstreamClient,
                health: ChannelHealth, rateLimiter: RateLimiter, settings: RelaySettings, logger: Logger,
                sharedRates: SharedRateWindows? = nil) {
        self.sharedRates = sharedRates
        self.keys = keys
        self.users = users
        self.catalog = catalog
        self.ledger = ledger
        self.client = client
        self.health = health
        self.rateLimiter = rateLimiter
        self.settings = settings
        self.logger = logger
    }

    // MARK: admission

    /// A call that passed every gate and holds its reservation.
    /// A call that passed admission. A class: it goes through routing, the attempts, settlement and a stream's relay
    /// as one reference, where a struct of its size was copied at each step and made every async frame that held it
    /// large enough to need memory of its own.
    final class Admitted: Sendable {
        let request: RelayRequest
        let token: Token
        let userId: Int64?
        /// The fields of the body admission read; the body itself stays bytes in `request.body`.
        let summary: RequestSummary
        let model: String
        let stream: Bool
        let groups: [Group]
        let price: ModelPrice
        let reservation: Reservation
        let promptEstimate: Int
        /// The windows the call's tokens count in: its first group's (first, when that group has limits), its token's.
        let rateKeys: [String]
        let firstGroupLimited: Bool
        let started: ContinuousClock.Instant
        let createdAt: Int64

        init(request: RelayRequest, token: Token, userId: Int64?, summary: RequestSummary, model: String, stream: Bool, groups: [Group],
             price: ModelPrice, reservation: Reservation, promptEstimate: Int, rateKeys: [String], firstGroupLimited: Bool, started: ContinuousClock.Instant,
             createdAt: Int64) {
            self.request = request
            self.token = token
            self.userId = userId
            self.summary = summary
            self.model = model
            self.stream = stream
            self.groups = groups
            self.price = price
            self.reservation = reservation
            self.promptEstimate = promptEstimate
            self.rateKeys = rateKeys
            self.firstGroupLimited = firstGroupLimited
            self.started = started
            self.createdAt = createdAt
        }

        /// The body as a tree, for rewriting and translation (admission has already found it valid).
        func parsedBody() throws(RelayError) -> JSON {
            do { return try JSON.parse(request.body.readableBytesView) } catch { throw .invalidRequest("The request body is not valid JSON: \(error)") }
        }
    }

    /// The digest `key` is found by (an HMAC): a connection keeps it for its next call with the same key.
    public func keyDigest(_ key: String) -> KeyDigest { keys.digest(key) }

    /// The key holder's token: key, status, expiry, IP (in the contract's order).
    nonisolated(nonsending) public func authenticate(key: String?, clientIP: IPAddress?, keyDigest: KeyDigest? = nil) async throws(RelayError) -> (CachedToken, UserCache.Entry?) {
        guard let key, !key.isEmpty else { throw .invalidKey("No API key given: send Authorization: Bearer sk-...") }
        let found: CachedToken?
        do { found = try await keys.lookup(key: key, digest: keyDigest) } catch { throw RelayError(status: 503, code: "storage_unavailable", type: "server_error", message: "The key store is unavailable; try again") }
        guard let cached = found else { throw .invalidKey() }
        let token = cached.token
        let now = Clock.nowSeconds()
        if token.status == Token.Status.disabled { throw .tokenDisabled() }
        if token.status == Token.Status.exhausted { throw .tokenExhausted() }
        if token.status == Token.Status.expired || token.isExpired(now: now) { throw .tokenExpired() }
        var owner: UserCache.Entry?
        if let userId = token.userId {
            do { owner = try await users.lookup(userId) } catch { throw RelayError(status: 503, code: "storage_unavailable", type: "server_error", message: "The user store is unavailable; try again") }
            guard let entry = owner else { throw .invalidKey() }
            if entry.status != User.Status.enabled {
                throw RelayError(status: 401, code: "token_disabled", type: "authentication_error", message: "The account of this API key is disabled")
            }
        }
        if !cached.allowList.allows(clientIP) { throw .ipNotAllowed(clientIP?.description ?? "an unknown address") }
        return (cached, owner)
    }

    /// The groups a token may use, in order: its primary group (or its owner's), then its fallback groups.
    static func groups(of token: Token, owner: UserCache.Entry?, snapshot: Catalog.Snapshot) -> [Group] {
        let primary = token.group.isEmpty ? (owner?.group ?? Group.defaultName) : token.group
        if token.fallbackGroups.isEmpty { return snapshot.groups[primary].map { [$0] } ?? [] }
        var seen = Set<String>()
        return ([primary] + token.fallbackGroups).compactMap { name in
            guard seen.insert(name).inserted else { return nil }
            return snapshot.groups[name]
        }
    }

    nonisolated(nonsending) func admit(_ request: RelayRequest) async throws(RelayError) -> Admitted {
        let started = ContinuousClock.now
        let (cached, owner) = try await authenticate(key: request.key, clientIP: request.clientIP, keyDigest: request.keyDigest)
        // What can be decided without waiting is decided in a plain function: its values stay on the thread's stack
        // instead of in the task's memory.
        let terms = try Self.terms(of: request, cached: cached, owner: owner, snapshot: catalog.snapshot)
        if !terms.limits.isEmpty { try await admitRates(terms.limits) }
        let token = cached.token
        let reservation: Reservation
        do {
            reservation = try await ledger.reserve(tokenId: token.id, tokenCapped: !token.unlimitedQuota,
                                                   userId: token.independent ? nil : token.userId, amount: terms.worst)
        } catch {
            throw Self.refusal(error, worst: terms.worst)
        }
        return Admitted(request: request, token: token, userId: token.userId, summary: terms.summary, model: terms.model,
                        stream: terms.summary.stream ?? false, groups: terms.groups, price: terms.price, reservation: reservation,
                        promptEstimate: terms.promptEstimate, rateKeys: terms.limits.isEmpty ? [] : terms.limits.map(\.key),
                        firstGroupLimited: terms.groups[0].limited, started: started, createdAt: Clock.nowSeconds())
    }

    /// What admission decides from the request and the token alone.
    struct Terms {
        let summary: RequestSummary
        let model: String
        let groups: [Group]
        let price: ModelPrice
        /// The rate limits that are set: the first group's per key holder, and the token's own.
        let limits: [RateLimiter.Limit]
        let promptEstimate: Int
        /// The most the call can cost: what is reserved.
        let worst: Int64
    }

    /// The body read (only the fields admission needs), the model allowed, the groups, the price, the limits and the
    /// worst cost.
    static func terms(of request: RelayRequest, cached: CachedToken, owner: UserCache.Entry?, snapshot: Catalog.Snapshot) throws(RelayError) -> Terms {
        let token = cached.token
        let scanned: RequestSummary?
        do {
            scanned = try RequestSummary.scan(request.body)
        } catch let error as RequestSummary.DuplicateKey {
            throw .invalidRequest("The request body has the key '\(error.name)' more than once")
        } catch {
            throw .invalidRequest("The request body is not valid JSON: \(error)")
        }
        guard let summary = scanned else { throw .invalidRequest("The request body must be a JSON object") }
        guard let model = summary.model, !model.isEmpty else { throw .invalidRequest("model is required") }
        if request.endpoint == .messages || request.endpoint == .chatCompletions, !summary.messagesIsArray { throw .invalidRequest("messages is required") }
        // Model whitelist of the token, then of its groups.
        if token.modelLimitsEnabled, !cached.modelLimits.contains(model) { throw .modelNotAllowed(model) }
        let groups = groups(of: token, owner: owner, snapshot: snapshot).filter { $0.allows(model: model) }
        guard !groups.isEmpty else { throw .modelNotAllowed(model) }
        // Price.
        guard let price = snapshot.prices[model] else {
            throw RelayError(status: 400, code: "model_price_unset", type: "invalid_request_error",
                             message: "Model '\(model)' has no price yet; an administrator must set one before it can be used")
        }
        if token.billingMode == .perCall, price.callPrice == nil {
            throw RelayError(status: 400, code: "model_call_price_unset", type: "invalid_request_error",
                             message: "This API key is billed per call, but model '\(model)' has no call price")
        }
        // Rate limits: only those that are set have a window (and a key to build) at all.
        var limits: [RateLimiter.Limit] = []
        if groups[0].limited { limits.append(groupLimit(groups[0], token: token)) }
        if token.rpm > 0 || token.tpm > 0 {
            limits.append(RateLimiter.Limit(key: "t:\(token.id)", rpm: token.rpm, tpm: token.tpm, label: "this API key"))
        }
        // Reservation: the worst case over the groups that may serve.
        let maxRatio = groups.map(\.ratio).max() ?? .one
        let promptEstimate = request.body.readableBytes / 3 + 8
        let worst: Int64
        switch token.billingMode {
        case .perCall:
            worst = Pricing.callCost(callPrice: price.callPrice ?? Micros(raw: 0), ratio: maxRatio)
        case .usage:
            let maxTokens = request.endpoint == .embeddings ? 0
                : (summary.maxCompletionTokens ?? summary.maxTokens ?? price.maxOutputTokens)
            worst = Pricing.usageCost(promptTokens: promptEstimate, completionTokens: max(0, maxTokens), price: price, ratio: maxRatio)
        }
        return Terms(summary: summary, model: model, groups: groups, price: price, limits: limits, promptEstimate: promptEstimate, worst: worst)
    }

    /// The caller's error for a reservation the ledger refused.
    static func refusal(_ error: ReservationFailure, worst: Int64) -> RelayError {
        switch error {
        case .tokenExhausted: .tokenExhausted()
        case .tokenInsufficient: .insufficientQuota("This API key's remaining quota cannot cover this call (needs up to \(worst) units)")
        case .userInsufficient: .insufficientQuota("Your balance cannot cover this call (needs up to \(worst) units)")
        }
    }

    /// A group's limit for a key holder: the token's user, or an independent token itself.
    static func groupLimit(_ group: Group, token: Token) -> RateLimiter.Limit {
        let holder = token.userId.map { "u\($0)" } ?? "t\(token.id)"
        return RateLimiter.Limit(key: "g:\(group.name):\(holder)", rpm: group.rpm, tpm: group.tpm, label: "group '\(group.name)'")
    }

    /// Counts the call against its rate limits: in memory on one instance, in shared windows across instances.
    nonisolated(nonsending) func admitRates(_ limits: [RateLimiter.Limit]) async throws(RelayError) {
        // Callers pass only limits that are set (`Terms`, a fallback group that is `limited`).
        guard !limits.isEmpty else { return }
        guard let sharedRates else {
            do { try rateLimiter.admit(limits) } catch { throw .rateLimited(error.message, retryAfter: error.retryAfter) }
            return
        }
        let now = Clock.nowSeconds()
        let refusal: (index: Int, byTokens: Bool, oldest: Int64)?
        do {
            refusal = try await sharedRates.admit(limits.map { SharedRateWindows.Check(key: $0.key, rpm: $0.rpm, tpm: $0.tpm) }, now: now)
        } catch {
            throw RelayError(status: 503, code: "storage_unavailable", type: "server_error", message: "Rate limits cannot be checked right now; try again")
        }
        if let refusal {
            let limit = limits[refusal.index]
            let text = refusal.byTokens ? "\(limit.tpm) tokens per minute" : "\(limit.rpm) requests per minute"
            throw .rateLimited("Rate limit reached: \(text) for \(limit.label)", retryAfter: max(1, Int(refusal.oldest + 60 - now)))
        }
    }

    // MARK: relay

    /// Relays a call; every failure is answered in the caller's format.
    nonisolated(nonsending) public func handle(_ request: RelayRequest) async -> RelayResponse {
        let admitted: Admitted
        do {
            admitted = try await admit(request)
        } catch {
            return errorResponse(error, format: request.endpoint.format)
        }
        return await route(admitted)
    }

    func errorResponse(_ error: RelayError, format: RelayFormat) -> RelayResponse {
        var headers = [("Content-Type", "application/json")]
        if let retry = error.retryAfter { headers.append(("Retry-After", String(retry))) }
        return .complete(status: error.status, headers: headers, body: RelayErrorBody.render(error, format: format))
    }

    /// Tries channels group by group until one answers; settles or releases the reservation.
    nonisolated(nonsending) func route(_ call: Admitted) async -> RelayResponse {
        let snapshot = catalog.snapshot
        var lastError: String?
        var rateRefusal: RelayError?
        for (index, group) in call.groups.enumerated() {
            if index > 0, group.limited, let refusal = await admitFallback(group, call: call) {
                // A fallback group serves only within its own limits for this key holder.
                rateRefusal = refusal
                lastError = refusal.message
                continue
            }
            for channel in candidates(group, call: call, snapshot: snapshot) {
                guard health.admits(channel.id) else {
                    lastError = resting(channel)
                    continue
                }
                let outcome = await attempt(call, channel: channel, group: group)
                switch outcome {
                case .done(let response):
                    health.succeeded(channel.id)
                    return response
                case .clientError(let response):
                    // The upstream refused the request itself: no retry, no charge.
                    health.succeeded(channel.id)
                    ledger.release(call.reservation)
                    return response
                case .failed(let reason):
                    lastError = failed(channel, reason: reason, call: call)
                }
            }
        }
        return unserved(call, lastError: lastError, rateRefusal: rateRefusal)
    }

    /// The channels of `group` to try for `call`, in order.
    func candidates(_ group: Group, call: Admitted, snapshot: Catalog.Snapshot) -> [Channel] {
        let candidates = ordered(snapshot.channels(group: group.name, model: call.model).filter { supports($0, call.request.endpoint) })
        guard let limit = settings.channelsPerGroup else { return candidates }
        return Array(candidates.prefix(limit))
    }

    /// Counts the call against a fallback group's limits; the refusal when it is at them.
    nonisolated(nonsending) func admitFallback(_ group: Group, call: Admitted) async -> RelayError? {
        do {
            try await admitRates([Self.groupLimit(group, token: call.token)])
            return nil
        } catch {
            return error
        }
    }

    // The cold ends of routing, out of line: what an async function holds lives in its task's memory for the whole
    // call, so the messages and log rows of failures are built in plain functions.

    /// Why a resting channel was passed over.
    func resting(_ channel: Channel) -> String {
        "channel '\(channel.name)' is resting after failures (last: \(health.state(channel.id).lastError))"
    }

    /// Notes a failed attempt; returns the reason as the call's last error.
    func failed(_ channel: Channel, reason: String, call: Admitted) -> String {
        health.failed(channel.id, error: reason)
        metrics.upstreamError(channel: channel.name)
        logger.warning("upstream failed", metadata: ["channel": "\(channel.name)", "reason": "\(reason)", "request_id": "\(call.request.requestId)"])
        return "channel '\(channel.name)': \(reason)"
    }

    /// A call no channel served: its reservation released, a log row, and the answer.
    func unserved(_ call: Admitted, lastError: String?, rateRefusal: RelayError?) -> RelayResponse {
        ledger.release(call.reservation)
        metrics.relayCall(group: call.groups.first?.name ?? "", model: call.model, outcome: "failed", quota: 0)
        if let rateRefusal, call.groups.count > 1 {
            // Every group that could still serve is at its limit.
            return errorResponse(rateRefusal, format: call.request.endpoint.format)
        }
        let reason = lastError ?? "no channel serves model '\(call.model)'"
        ledger.record(failureLog(call, message: reason))
        return errorResponse(.noChannel("No channel could serve model '\(call.model)': \(reason)"), format: call.request.endpoint.format)
    }

    /// Highest priority first; weighted random order within a priority.
    func ordered(_ channels: [Channel]) -> [Channel] {
        if channels.count < 2 { return channels }
        let byPriority = Dictionary(grouping: channels, by: \.priority)
        var result: [Channel] = []
        for priority in byPriority.keys.sorted(by: >) {
            var pool = byPriority[priority]!
            while !pool.isEmpty {
                let total = pool.reduce(0) { $0 + max(1, $1.weight) }
                var pick = Int.random(in: 0..<total)
                var index = 0
                for (position, channel) in pool.enumerated() {
                    pick -= max(1, channel.weight)
                    if pick < 0 { index = position; break }
                }
                result.append(pool.remove(at: index))
            }
        }
        return result
    }

    func supports(_ channel: Channel, _ endpoint: RelayEndpoint) -> Bool {
        switch endpoint {
        case .chatCompletions, .messages: return true
        case .completions, .embeddings: return channel.type == .openai
        }
    }

    enum Attempt {
        case done(RelayResponse)
        case clientError(RelayResponse)
        case failed(String)
    }

    /// One try on one channel.
    nonisolated(nonsending) func attempt(_ call: Admitted, channel: Channel, group: Group) async -> Attempt {
        let plan: UpstreamPlan
        do { plan = try UpstreamPlan(call: call, channel: channel) } catch { return .clientError(errorResponse(error, format: call.request.endpoint.format)) }
        let response: UpstreamResponse
        do {
            response = try await client.execute(Self.upstreamRequest(call, channel: channel, plan: plan), timeouts: channel.upstreamTimeouts)
        } catch {
            return .failed(Self.describe(error))
        }
        if response.status >= 400 { return await refused(response, plan: plan) }
        if call.stream, (response.headers.first(name: "content-type") ?? "").contains("text/event-stream") {
            let relay = StreamRelay(engine: self, call: call, channel: channel, group: group, plan: plan, body: response.body)
            return .done(.stream(status: 200, headers: Self.answerHeaders(group: group, channel: channel, stream: true), relay))
        }
        // A whole answer.
        let bytes: ByteBuffer
        do { bytes = try await response.body.collect(upTo: settings.maxResponseBytes) } catch { return .failed("reading the answer: \(Self.describe(error))") }
        guard let (usage, out) = Self.read(bytes, call: call, plan: plan) else { return .failed("the upstream answered malformed JSON") }
        await settle(call, channel: channel, group: group, usage: usage, stream: false)
        return .done(.complete(status: response.status, headers: Self.answerHeaders(group: group, channel: channel, stream: false), body: out))
    }

    /// An answer of 400 or more: a failure to try on another channel (5xx, 429, 401, 403, 404, 408), else the request
    /// itself refused (400, 413, 422...), answered in the caller's format. Apart from `attempt`, so that its values
    /// take task memory only when an upstream refuses.
    nonisolated(nonsending) func refused(_ response: UpstreamResponse, plan: UpstreamPlan) async -> Attempt {
        let status = response.status
        if status >= 500 || status == 429 || status == 401 || status == 403 || status == 404 || status == 408 {
            let text = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
            return .failed("HTTP \(status) \(text.prefix(200))")
        }
        let body = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
        return .clientError(.complete(status: status, headers: [("Content-Type", "application/json")],
                                      body: plan.translateError(body, status: status)))
    }

    /// The headers of an answer `channel` gave.
    static func answerHeaders(group: Group, channel: Channel, stream: Bool) -> [(String, String)] {
        var headers = [("X-Sluice-Group", group.name), ("X-Sluice-Channel", String(channel.id))]
        headers.reserveCapacity(4)
        if stream {
            headers.append(("Content-Type", "text/event-stream"))
            headers.append(("Cache-Control", "no-cache"))
        } else {
            headers.append(("Content-Type", "application/json"))
        }
        return headers
    }

    /// The request to `channel`: the plan's body and path, with the channel's credentials.
    static func upstreamRequest(_ call: Admitted, channel: Channel, plan: UpstreamPlan) -> UpstreamRequest {
        var headers: [(String, String)] = [("Content-Type", "application/json"), ("Accept", call.stream ? "text/event-stream" : "application/json")]
        switch channel.type {
        case .openai:
            headers.append(("Authorization", "Bearer \(channel.key)"))
        case .anthropic:
            headers.append(("x-api-key", channel.key))
            let version = call.request.anthropicHeaders.first { $0.0 == "anthropic-version" }?.1 ?? "2023-06-01"
            headers.append(("anthropic-version", version))
            if let beta = call.request.anthropicHeaders.first(where: { $0.0 == "anthropic-beta" })?.1 { headers.append(("anthropic-beta", beta)) }
        }
        return UpstreamRequest(url: channel.url(plan.path), headers: headers, body: plan.body)
    }

    /// A whole answer's usage and the body that goes back; nil when it is not JSON. An answer that goes back as it
    /// came and reports its usage is read in place; one to translate, or without usage (its text is counted), is
    /// parsed into a tree once.
    static func read(_ bytes: ByteBuffer, call: Admitted, plan: UpstreamPlan) -> (Usage, ByteBuffer)? {
        if plan.translate == .none, let reported = AnswerFacts.scan(bytes)?.usage.usage {
            return (reported, bytes)
        }
        guard let parsed = try? JSON.parse(bytes.readableBytesView) else { return nil }
        let usage = Usage.from(parsed) ?? Usage(prompt: call.promptEstimate, completion: estimateTokens(textOf: parsed))
        return (usage, plan.translateResponse(parsed, original: bytes))
    }

    // MARK: settlement

    /// Charges the exact cost of a call that was answered, logs it and counts its tokens.
    nonisolated(nonsending) func settle(_ call: Admitted, channel: Channel, group: Group, usage: Usage, stream: Bool, note: String = "") async {
        let cost: Int64
        switch call.token.billingMode {
        case .perCall: cost = Pricing.callCost(callPrice: call.price.callPrice ?? Micros(raw: 0), ratio: group.ratio)
        case .usage: cost = Pricing.usageCost(promptTokens: usage.prompt, completionTokens: usage.completion, price: call.price, ratio: group.ratio)
        }
        let elapsed = ContinuousClock.now - call.started
        let log = LogEntry(createdAt: call.createdAt, type: LogEntry.Kind.consume, userId: call.userId, tokenId: call.token.id,
                           tokenName: call.token.name, modelName: call.model, group: group.name, channelId: channel.id,
                           channelName: channel.name, promptTokens: usage.prompt, completionTokens: usage.completion, quota: cost,
                           useTimeMs: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000),
                           isStream: stream, ip: call.request.clientAddress, content: note, requestId: call.request.requestId)
        let charged = ledger.settle(call.reservation, cost: cost, log: log)
        metrics.relayCall(group: group.name, model: call.model, outcome: "ok", quota: charged)
        let tokens = usage.prompt + usage.completion
        var keys = call.rateKeys
        if group.name != call.groups[0].name {
            // A fallback group served: its tokens count in its own window, not the first group's.
            if call.firstGroupLimited { keys.removeFirst() }
            if group.limited { keys.insert(Self.groupLimit(group, token: call.token).key, at: 0) }
        }
        if keys.isEmpty { return }
        if let sharedRates {
            let now = Clock.nowSeconds()
            // Counted before the answer ends, so that the caller's next call sees these tokens; in a task of its own,
            // so that a caller who leaves cannot cancel the count.
            await Task { try? await sharedRates.addTokens(tokens, keys: keys, now: now) }.value
        } else {
            rateLimiter.addTokens(tokens, to: keys)
        }
    }

    /// A log row for a call no channel could serve (nothing charged).
    func failureLog(_ call: Admitted, message: String) -> LogEntry {
        let elapsed = ContinuousClock.now - call.started
        return LogEntry(createdAt: call.createdAt, type: LogEntry.Kind.error, userId: call.userId, tokenId: call.token.id,
                        tokenName: call.token.name, modelName: call.model, group: call.groups.first?.name ?? "", channelId: nil,
                        channelName: "", promptTokens: 0, completionTokens: 0, quota: 0,
                        useTimeMs: Int(elapsed.components.seconds * 1000), isStream: call.stream,
                        ip: call.request.clientAddress, content: String(message.prefix(500)), requestId: call.request.requestId)
    }

    /// A rough token count of delivered text, for upstreams that report no usage: a token per four bytes.
    static func estimateTokens(bytes: Int) -> Int { bytes == 0 ? 0 : (bytes + 3) / 4 }

    static func estimateTokens(textOf body: JSON) -> Int {
        var bytes = 0
        for choice in body["choices"].array ?? [] {
            bytes += choice["message"]["content"].string?.utf8.count ?? 0
            bytes += choice["text"].string?.utf8.count ?? 0
        }
        for block in body["content"].array ?? [] { bytes += block["text"].string?.utf8.count ?? 0 }
        return estimateTokens(bytes: bytes)
    }

    static func describe(_ error: any Error) -> String {
        "\(error)"
    }
}
