import Crypto
import Foundation

/// Encrypts secrets at rest (AES-GCM) and derives their lookup index (HMAC-SHA256), both from the master secret.
///
/// Two independent keys are derived with HKDF, so the lookup index reveals nothing about the encryption key.
/// A copy of the database without the master secret reveals no key.
public struct SecretBox: Sendable {
    private let encryptionKeyBytes: [UInt8]
    private let lookupKeyBytes: [UInt8]
    private var encryptionKey: SymmetricKey { SymmetricKey(data: encryptionKeyBytes) }
    private var lookupKey: SymmetricKey { SymmetricKey(data: lookupKeyBytes) }

    /// Derives the keys from the master secret (any non-empty string).
    public init(masterSecret: String) {
        let ikm = SymmetricKey(data: Data(masterSecret.utf8))
        let salt = Data("sluice".utf8)
        encryptionKeyBytes = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: Data("sluice-aes-gcm-v1".utf8), outputByteCount: 32)
            .withUnsafeBytes { Array($0) }
        lookupKeyBytes = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: Data("sluice-hmac-lookup-v1".utf8), outputByteCount: 32)
            .withUnsafeBytes { Array($0) }
    }

    /// Encrypts `plaintext`; the answer is base64 of nonce, ciphertext and tag.
    public func seal(_ plaintext: String) -> String {
        // AES-GCM with a random nonce cannot fail for a valid key and nonce.
        let box = try! AES.GCM.seal(Data(plaintext.utf8), using: encryptionKey)
        return box.combined!.base64EncodedString()
    }

    /// Decrypts what `seal` produced; nil when it was tampered with or sealed under another secret.
    public func open(_ sealed: String) -> String? {
        guard let data = Data(base64Encoded: sealed),
              let box = try? AES.GCM.SealedBox(combined: data),
              let plain = try? AES.GCM.open(box, using: encryptionKey) else { return nil }
        return String(decoding: plain, as: UTF8.self)
    }

    /// The lookup index of a secret: hex HMAC-SHA256 under the lookup key.
    public func lookupHash(_ secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(secret.utf8), using: lookupKey)
        return Hex.encode(mac)
    }
}

/// Hex encoding and constant-time comparison.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Lowercase hex of the bytes.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Compares two strings in time that depends only on their lengths.
    public static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8), b = Array(rhs.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for index in 0..<a.count { diff |= a[index] ^ b[index] }
        return diff == 0
    }
}

/// Random secrets from the system CSPRNG.
public enum RandomSecret {
    /// The 62 characters of keys and codes.
    public static let alphanumerics = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// `count` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
    /// Random bytes come from the system CSPRNG eight at a time, not one call per byte.
    public static func string(count: Int, alphabet: [UInt8] = alphanumerics) -> String {
        var generator = SystemRandomNumberGenerator()
        var out = [UInt8]()
        out.reserveCapacity(count)
        let limit = UInt8(256 - 256 % alphabet.count)
        while out.count < count {
            var word = generator.next()
            for _ in 0..<8 where out.count < count {
                let byte = UInt8(truncatingIfNeeded: word)
                word >>= 8
                if byte < limit { out.append(alphabet[Int(byte) % alphabet.count]) }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A new API key: `sk-` and 48 alphanumerics.
    public static func apiKey() -> String { "sk-" + string(count: 48) }

    /// Whether `key` has the shape of an API key.
    public static func looksLikeAPIKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 51, key.hasPrefix("sk-") else { return false }
        return bytes[3...].allSatisfy { alphanumerics.contains($0) }
    }

    /// The masked form shown in lists: `sk-ABCD**********wxyz`.
    public static func mask(_ key: String) -> String {
        guard key.hasPrefix("sk-"), key.count >= 11 else { return "sk-**********" }
        let body = key.dropFirst(3)
        return "sk-" + body.prefix(4) + "**********" + body.suffix(4)
    }
}
