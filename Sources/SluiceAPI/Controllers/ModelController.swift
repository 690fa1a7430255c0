import Hummingbird
import SluiceCore
import SluiceStore

/// `/api/model/...` (admin): model prices; and the public `/api/pricing`.
struct ModelController: Sendable {
    let services: Services
    var auth: Authenticator { Authenticator(services: services) }

    struct PriceDTO: Codable, Sendable {
        let id: Int64
        let model: String
        let inputPrice: Double
        let outputPrice: Double
        let callPrice: Nullable<Double>
        let maxOutputTokens: Int

        init(id: Int64, _ price: ModelPrice) {
            self.id = id
            model = price.model
            inputPrice = price.inputPrice.decimal
            outputPrice = price.outputPrice.decimal
            callPrice = Nullable(price.callPrice?.decimal)
            maxOutputTokens = price.maxOutputTokens
        }
    }

    struct PriceInput: Decodable, Sendable {
        let id: Int64?
        let model: String?
        let inputPrice: Micros?
        let outputPrice: Micros?
        /// Given (a price, or null to clear it), or not mentioned.
        let callPrice: Nullable<Micros>?
        let maxOutputTokens: Int?

        enum CodingKeys: String, CodingKey { case id, model, inputPrice, outputPrice, callPrice, maxOutputTokens }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decodeIfPresent(Int64.self, forKey: .id)
            model = try container.decodeIfPresent(String.self, forKey: .model)
            inputPrice = try container.decodeIfPresent(Micros.self, forKey: .inputPrice)
            outputPrice = try container.decodeIfPresent(Micros.self, forKey: .outputPrice)
            maxOutputTokens = try container.decodeIfPresent(Int.self, forKey: .maxOutputTokens)
            // An explicit null clears the call price; a missing key keeps it.
            if container.contains(.callPrice) {
                callPrice = try container.decodeNil(forKey: .callPrice) ? Nullable(nil) : Nullable(try container.decode(Micros.self, forKey: .callPrice))
            } else {
                callPrice = nil
            }
        }
    }

    /// A model's prices in one group (the group's ratio applied).
    struct GroupPrice: Codable, Sendable {
        let group: String
        let ratio: Double
        let inputPrice: Double
        let outputPrice: Double
        let callPrice: Nullable<Double>
    }

    struct PricingDTO: Codable, Sendable {
        let model: String
        let inputPrice: Double
        let outputPrice: Double
        let callPrice: Nullable<Double>
        let maxOutputTokens: Int
        let groups: [GroupPrice]
    }

    func addRoutes(to router: RouterGroup<SluiceRequestContext>) {
        router.addCollection(list: list, create: create, update: update, get: get, delete: delete)
    }

    @Sendable func list(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        return API.ok(try Paged(try await services.prices.all(), request: request) { PriceDTO(id: $0.id, $0.price) })
    }

    @Sendable func get(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        guard let found = try await services.prices.find(try context.parameters.require("id")) else { throw APIError.notFound("Model price does not exist") }
        return API.ok(PriceDTO(id: found.id, found.price))
    }

    @Sendable func create(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let admin = try await auth.admin(request, context: context)
        let input = try await API.decode(PriceInput.self, from: request)
        guard let model = input.model, !model.isEmpty, model.count <= 200 else { throw APIError.badRequest("model is required (1 to 200 characters)") }
        var price = ModelPrice(model: model, inputPrice: Micros(raw: 0), outputPrice: Micros(raw: 0), callPrice: nil, maxOutputTokens: 4096)
        try apply(input, to: &price)
        guard let id = try await services.prices.create(price) else { throw APIError.conflict("Model '\(model)' has a price already") }
        await services.announce(.prices)
        await services.audit(admin, "set the price of \(price.model)", ip: auth.clientAddress(request, context: context))
        return API.ok(PriceDTO(id: id, price))
    }

    @Sendable func update(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let admin = try await auth.admin(request, context: context)
        let input = try await API.decode(PriceInput.self, from: request)
        guard let reference = input.id.map(String.init) ?? input.model else { throw APIError.badRequest("id is required") }
        guard var found = try await services.prices.find(reference) else { throw APIError.notFound("Model price does not exist") }
        if let model = input.model, input.id != nil {
            guard !model.isEmpty, model.count <= 200 else { throw APIError.badRequest("model must be 1 to 200 characters") }
            found.price.model = model
        }
        try apply(input, to: &found.price)
        try await services.prices.update(id: found.id, found.price)
        await services.announce(.prices)
        await services.audit(admin, "changed the price of \(found.price.model)", ip: auth.clientAddress(request, context: context))
        return API.ok(PriceDTO(id: found.id, found.price))
    }

    @Sendable func delete(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        guard let found = try await services.prices.find(try context.parameters.require("id")) else { throw APIError.notFound("Model price does not exist") }
        try await services.prices.delete(id: found.id)
        await services.announce(.prices)
        return API.ok()
    }

    private func apply(_ input: PriceInput, to price: inout ModelPrice) throws {
        if let value = input.inputPrice { price.inputPrice = value }
        if let value = input.outputPrice { price.outputPrice = value }
        if let value = input.callPrice { price.callPrice = value.value }
        if let value = input.maxOutputTokens {
            guard (1...10_000_000).contains(value) else { throw APIError.badRequest("max_output_tokens must be between 1 and 10000000") }
            price.maxOutputTokens = value
        }
    }

    /// `GET /api/pricing` (public): every priced model with its prices in each selectable group that offers it.
    @Sendable func pricing(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let snapshot = services.catalog.snapshot
        let groups = snapshot.groups.values.filter(\.selectable).sorted { $0.name < $1.name }
        let items = snapshot.prices.values.sorted { $0.model < $1.model }.map { price in
            PricingDTO(model: price.model, inputPrice: price.inputPrice.decimal, outputPrice: price.outputPrice.decimal,
                       callPrice: Nullable(price.callPrice?.decimal), maxOutputTokens: price.maxOutputTokens,
                       groups: groups.filter { $0.allows(model: price.model) }.map { group in
                           let ratio = group.ratio.decimal
                           return GroupPrice(group: group.name, ratio: ratio, inputPrice: price.inputPrice.decimal * ratio,
                                             outputPrice: price.outputPrice.decimal * ratio,
                                             callPrice: Nullable(price.callPrice.map { $0.decimal * ratio }))
                       })
        }
        return API.ok(items)
    }
}
