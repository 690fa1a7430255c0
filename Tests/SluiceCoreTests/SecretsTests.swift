import Crypto
import Foundation
import SluiceCore
import Testing

@Suite struct SecretsTests {
    @Test func keysHaveTheContractShape() {
        var seen = Set<String>()
        for _ in 0..<200 {
            let key = RandomSecret.apiKey()
            #expect(key.hasPrefix("sk-"))
            #expect(key.count == 51)
            #expect(key.dropFirst(3).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            #expect(RandomSecret.looksLikeAPIKey(key))
            seen.insert(key)
        }
        #expect(seen.count == 200)
    }

    @Test func keysUseTheWholeAlphabet() {
        let text = (0..<100).map { _ in RandomSecret.string(count: 48) }.joined()
        #expect(Set(text).count == 62)
    }

    @Test func masking() {
        #expect(RandomSecret.mask("sk-ABCDefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTwxyz") == "sk-ABCD**********wxyz")
    }

    @Test func sealAndOpen() {
        let box = SecretBox(masterSecret: "one")
        let sealed = box.seal("sk-secret")
        #expect(!sealed.contains("sk-secret"))
        #expect(box.open(sealed) == "sk-secret")
        #expect(SecretBox(masterSecret: "two").open(sealed) == nil)
        #expect(box.seal("sk-secret") != sealed, "random nonces")
    }

    /// The lookup index is HMAC-SHA256 under the HKDF-derived lookup key, whatever was looked up before (each lookup
    /// starts from a copy of the keyed state).
    @Test func lookupHashIsTheHMACUnderTheDerivedKey() {
        let box = SecretBox(masterSecret: "master")
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: Data("master".utf8)), salt: Data("sluice".utf8),
                                         info: Data("sluice-hmac-lookup-v1".utf8), outputByteCount: 32)
        for secret in ["sk-a", "sk-b", "", "sk-a", String(repeating: "k", count: 300)] {
            let expected = HMAC<SHA256>.authenticationCode(for: Data(secret.utf8), using: key).map { String(format: "%02x", $0) }.joined()
            #expect(box.lookupHash(secret) == expected)
        }
    }

    @Test func lookupHashIsKeyedAndStable() {
        let one = SecretBox(masterSecret: "one"), two = SecretBox(masterSecret: "two")
        #expect(one.lookupHash("sk-a") == one.lookupHash("sk-a"))
        #expect(one.lookupHash("sk-a") != two.lookupHash("sk-a"))
        #expect(one.lookupHash("sk-a").count == 64)
    }

    @Test func constantTimeEquals() {
        #expect(Hex.constantTimeEquals("abc", "abc"))
        #expect(!Hex.constantTimeEquals("abc", "abd"))
        #expect(!Hex.constantTimeEquals("abc", "abcd"))
    }
}
