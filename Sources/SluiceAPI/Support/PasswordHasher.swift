import HummingbirdBcrypt
import NIOPosix

/// bcrypt for passwords, on NIO's blocking thread pool: a hash takes tens of milliseconds, which must not stall the
/// event loops that run every other call.
enum PasswordHasher {
    /// Cost 10: about 50 ms a hash on this class of machine (`SLUICE_BCRYPT_COST` changes it).
    static let defaultCost: UInt8 = 10

    static func hash(_ password: String, cost: UInt8) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    static func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}
