import HummingbirdBcrypt

/// bcrypt for passwords.
enum PasswordHasher {
    /// Cost 10: about 50 ms a hash on this class of machine.
    static let cost: UInt8 = 10

    static func hash(_ password: String) -> String { Bcrypt.hash(password, cost: cost) }

    static func verify(_ password: String, hash: String) -> Bool { Bcrypt.verify(password, hash: hash) }
}
