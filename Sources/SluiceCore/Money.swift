/// Integer money: every balance, reservation and charge in Sluice is a whole number of quota units.
///
/// 500,000 units make one US dollar. Prices are kept as integer micro-dollars (per million tokens, or per call) and
/// group ratios as integer parts-per-million, so that a cost is computed exactly with 128-bit intermediates and a
/// single rounding at the end.
public enum Quota {
    /// Quota units per US dollar.
    public static let unitsPerUSD: Int64 = 500_000
}

/// A non-negative decimal quantity kept as an integer number of millionths (micro-dollars, or parts per million).
public struct Micros: Sendable, Hashable, Comparable, Codable {
    /// The raw number of millionths.
    public var raw: Int64

    /// Wraps a raw number of millionths.
    public init(raw: Int64) { self.raw = raw }

    /// Converts a decimal value, rounding to the nearest millionth. Returns nil for NaN, infinities, negatives
    /// and values above one trillion.
    public init?(decimal: Double) {
        guard decimal.isFinite, decimal >= 0, decimal <= 1_000_000_000_000 else { return nil }
        self.raw = Int64((decimal * 1_000_000).rounded())
    }

    /// The value as a decimal, for JSON answers.
    public var decimal: Double { Double(raw) / 1_000_000 }

    /// One, as parts per million (a ratio of 1).
    public static let one = Micros(raw: 1_000_000)

    public static func < (lhs: Micros, rhs: Micros) -> Bool { lhs.raw < rhs.raw }

    public init(from decoder: any Decoder) throws {
        let value = try decoder.singleValueContainer().decode(Double.self)
        guard let micros = Micros(decimal: value) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "must be a non-negative number"))
        }
        self = micros
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(decimal)
    }
}

/// The price list entry of one model.
public struct ModelPrice: Sendable, Hashable {
    /// The model name as clients send it.
    public var model: String
    /// USD per one million prompt tokens.
    public var inputPrice: Micros
    /// USD per one million completion tokens.
    public var outputPrice: Micros
    /// USD per call, for tokens in `per_call` billing mode; nil when the model has no call price.
    public var callPrice: Micros?
    /// The largest completion the model produces; used to reserve when the client gives no `max_tokens`.
    public var maxOutputTokens: Int

    /// Creates a price entry.
    public init(model: String, inputPrice: Micros, outputPrice: Micros, callPrice: Micros?, maxOutputTokens: Int) {
        self.model = model
        self.inputPrice = inputPrice
        self.outputPrice = outputPrice
        self.callPrice = callPrice
        self.maxOutputTokens = maxOutputTokens
    }
}

/// How a token is charged.
public enum BillingMode: String, Sendable, Codable, CaseIterable {
    /// By prompt and completion tokens (the default).
    case usage
    /// A fixed price per call.
    case perCall = "per_call"
}

/// The contract's cost formulas, in integer quota units.
public enum Pricing {
    /// Usage cost: `(prompt * input + completion * output) / 1e6 * 500000 * ratio`, rounded half up,
    /// at least 1 when above zero.
    public static func usageCost(promptTokens: Int, completionTokens: Int, price: ModelPrice, ratio: Micros) -> Int64 {
        let tokens = Int128(max(0, promptTokens)) * Int128(price.inputPrice.raw)
            + Int128(max(0, completionTokens)) * Int128(price.outputPrice.raw)
        // tokens is in micro-USD per 1M tokens x tokens: divide by 1e6 (per token) and 1e6 (micro); ratio is ppm (1e6).
        let numerator = tokens * Int128(Quota.unitsPerUSD) * Int128(ratio.raw)
        return roundHalfUp(numerator, 1_000_000_000_000_000_000)
    }

    /// Per-call cost: `call_price * 500000 * ratio`, rounded half up, at least 1 when above zero.
    public static func callCost(callPrice: Micros, ratio: Micros) -> Int64 {
        let numerator = Int128(callPrice.raw) * Int128(Quota.unitsPerUSD) * Int128(ratio.raw)
        return roundHalfUp(numerator, 1_000_000_000_000)
    }

    /// Divides rounding halves up; a positive numerator never rounds to zero.
    static func roundHalfUp(_ numerator: Int128, _ denominator: Int128) -> Int64 {
        guard numerator > 0 else { return 0 }
        let rounded = (numerator + denominator / 2) / denominator
        let clamped = min(rounded, Int128(Int64.max))
        return max(1, Int64(clamped))
    }
}
