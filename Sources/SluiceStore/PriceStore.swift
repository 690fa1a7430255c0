import SQLKit
import SluiceCore

/// Model prices (admin `/api/model/`).
public struct PriceStore: Sendable {
    let database: Database

    /// Creates the store over `database`.
    public init(database: Database) { self.database = database }

    static let columns = "id, model, input_price, output_price, call_price, max_output_tokens"

    static func decode(_ row: any SQLRow) throws -> (Int64, ModelPrice) {
        (try row.decode(column: "id", as: Int64.self),
         ModelPrice(model: try row.decode(column: "model", as: String.self),
                    inputPrice: Micros(raw: try row.decode(column: "input_price", as: Int64.self)),
                    outputPrice: Micros(raw: try row.decode(column: "output_price", as: Int64.self)),
                    callPrice: try row.decode(column: "call_price", as: Int64?.self).map(Micros.init(raw:)),
                    maxOutputTokens: try row.decode(column: "max_output_tokens", as: Int.self)))
    }

    /// Every price, by model name.
    public func all() async throws -> [(id: Int64, price: ModelPrice)] {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: PriceStore.columns) FROM model_prices ORDER BY model").all().map(PriceStore.decode)
        }
    }

    /// The price with that id, or of that model name.
    public func find(_ reference: String) async throws -> (id: Int64, price: ModelPrice)? {
        try await database.withSQL { sql in
            if let id = Int64(reference),
               let row = try await sql.raw("SELECT \(unsafeRaw: PriceStore.columns) FROM model_prices WHERE id = \(bind: id)").first() {
                return try PriceStore.decode(row)
            }
            return try await sql.raw("SELECT \(unsafeRaw: PriceStore.columns) FROM model_prices WHERE model = \(bind: reference)").first().map(PriceStore.decode)
        }
    }

    /// Inserts a price; nil when the model has one already.
    public func create(_ price: ModelPrice) async throws -> Int64? {
        let now = Clock.nowSeconds()
        return try await database.withSQL { sql in
            if try await sql.raw("SELECT id FROM model_prices WHERE model = \(bind: price.model)").first() != nil { return nil }
            return try await sql.raw("""
                INSERT INTO model_prices (model, input_price, output_price, call_price, max_output_tokens, created_at, updated_at)
                VALUES (\(bind: price.model), \(bind: price.inputPrice.raw), \(bind: price.outputPrice.raw), \(bind: price.callPrice?.raw),
                        \(bind: price.maxOutputTokens), \(bind: now), \(bind: now))
                RETURNING id
                """).first()?.decode(column: "id", as: Int64.self)
        }
    }

    /// Saves a price.
    public func update(id: Int64, _ price: ModelPrice) async throws {
        try await database.withSQL { sql in
            try await sql.raw("""
                UPDATE model_prices SET model = \(bind: price.model), input_price = \(bind: price.inputPrice.raw), output_price = \(bind: price.outputPrice.raw),
                    call_price = \(bind: price.callPrice?.raw), max_output_tokens = \(bind: price.maxOutputTokens), updated_at = \(bind: Clock.nowSeconds())
                WHERE id = \(bind: id)
                """).run()
        }
    }

    /// Deletes a price.
    public func delete(id: Int64) async throws {
        try await database.withSQL { sql in try await sql.raw("DELETE FROM model_prices WHERE id = \(bind: id)").run() }
    }
}
