import Crypto
import Foundation

/// Encrypts secrets at rest (AES-GCM) and derives their lookup index (HMAC-SHA256), both from the master secret.
///
/// Two independent keys are derived with HKDF, so the lookup index reveals nothing about the encryption key.
/// A copy of the database without the master secret reveals no key.
public struct SecretBox: Sendable {
    private let encryptionKeyBytes: [UInt8]
    /// The HMAC with the lookup key already absorbed: each lookup copies it instead of deriving the key pads again
    /// (a copy-on-write value, so sharing it between threads is safe).
    private let lookupMAC: SharedMAC
    private var encryptionKey: SymmetricKey { SymmetricKey(data: encryptionKeyBytes) }

    private struct SharedMAC: @unchecked Sendable {
        let mac: HMAC<SHA256>
    }

    /// Derives the keys from the master secret (any non-empty string).
    public init(masterSecret: String) {
        let ikm = SymmetricKey(data: Data(masterSecret.utf8))
        let salt = Data("sluice".utf8)
        encryptionKeyBytes = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: Data("sluice-aes-gcm-v1".utf8), outputByteCount: 32)
            .withUnsafeBytes { Array($0) }
        let lookupKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: Data("sluice-hmac-lookup-v1".utf8), outputByteCount: 32)
        lookupMAC = SharedMAC(mac: HMAC<SHA256>(key: lookupKey))
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
        Hex.encode(lookupDigest(secret).bytes)
    }

    /// The same HMAC as 32 bytes, for in-memory indexes: no hex string to build and hash again.
    public func lookupDigest(_ secret: String) -> KeyDigest {
        var mac = lookupMAC.mac
        var secret = secret
        secret.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        return KeyDigest(mac.finalize())
    }
}

/// An HMAC-SHA256 value as four words: hashed and compared without allocating.
public struct KeyDigest: Hashable, Sendable {
    let words: (UInt64, UInt64, UInt64, UInt64)

    init(_ mac: some MessageAuthenticationCode) {
        words = mac.withUnsafeBytes { raw in
            (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
             raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        }
    }

    /// The 32 bytes, in order.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: words) { Array($0) }
    }

    public static func == (a: KeyDigest, b: KeyDigest) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
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
        var key = key
        return key.withUTF8 { bytes in
            guard bytes.count == 51, bytes[0] == UInt8(ascii: "s"), bytes[1] == UInt8(ascii: "k"), bytes[2] == UInt8(ascii: "-") else { return false }
            for byte in bytes[3...] {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): continue
                default: return false
                }
            }
            return true
        }
    }

    /// The masked form shown in lists: `sk-ABCD**********wxyz`.
    public static func mask(_ key: String) -> String {
        guard key.hasPrefix("sk-"), key.count >= 11 else { return "sk-**********" }
        let body = key.dropFirst(3)
        return "sk-" + body.prefix(4) + "**********" + body.suffix(4)
    }
}
