import SluiceCore
import Testing

@Suite struct MoneyTests {
    let gpt = ModelPrice(model: "m", inputPrice: Micros(decimal: 2.5)!, outputPrice: Micros(decimal: 10)!, callPrice: Micros(decimal: 0.04)!,
                         maxOutputTokens: 4096)

    @Test func usageCostFollowsTheContractFormula() {
        // (1000 * 2.5 + 500 * 10) / 1e6 * 500000 * 1 = 3750
        #expect(Pricing.usageCost(promptTokens: 1000, completionTokens: 500, price: gpt, ratio: .one) == 3750)
        // ratio 1.5 -> 5625
        #expect(Pricing.usageCost(promptTokens: 1000, completionTokens: 500, price: gpt, ratio: Micros(decimal: 1.5)!) == 5625)
    }

    @Test func roundsHalfUpAndNeverToZero() {
        let cheap = ModelPrice(model: "c", inputPrice: Micros(decimal: 0.000001)!, outputPrice: Micros(raw: 0), callPrice: nil, maxOutputTokens: 1)
        #expect(Pricing.usageCost(promptTokens: 1, completionTokens: 0, price: cheap, ratio: .one) == 1)
        // 3 tokens at 1 USD/1M = 1.5 units -> 2 (half up); 1 token = 0.5 -> 1
        let one = ModelPrice(model: "o", inputPrice: Micros(decimal: 1)!, outputPrice: Micros(raw: 0), callPrice: nil, maxOutputTokens: 1)
        #expect(Pricing.usageCost(promptTokens: 3, completionTokens: 0, price: one, ratio: .one) == 2)
        #expect(Pricing.usageCost(promptTokens: 5, completionTokens: 0, price: one, ratio: .one) == 3)
        #expect(Pricing.usageCost(promptTokens: 0, completionTokens: 0, price: one, ratio: .one) == 0)
    }

    @Test func perCallCost() {
        #expect(Pricing.callCost(callPrice: Micros(decimal: 0.04)!, ratio: .one) == 20000)
        #expect(Pricing.callCost(callPrice: Micros(decimal: 0.04)!, ratio: Micros(decimal: 0.5)!) == 10000)
        #expect(Pricing.callCost(callPrice: Micros(raw: 0), ratio: .one) == 0)
    }

    @Test func hugeUsageDoesNotOverflow() {
        let dear = ModelPrice(model: "d", inputPrice: Micros(decimal: 1000)!, outputPrice: Micros(decimal: 1000)!, callPrice: nil, maxOutputTokens: 1)
        // 10M tokens at 1000 USD per 1M = 10000 USD = 5e9 units
        #expect(Pricing.usageCost(promptTokens: 10_000_000, completionTokens: 0, price: dear, ratio: .one) == 5_000_000_000)
    }

    @Test func microsRejectNonsense() {
        #expect(Micros(decimal: -1) == nil)
        #expect(Micros(decimal: .nan) == nil)
        #expect(Micros(decimal: 0.1)?.raw == 100_000)
    }
}
