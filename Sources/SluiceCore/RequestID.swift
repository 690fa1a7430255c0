import Synchronization

/// Request ids: unique, not secret. Eight random characters drawn once per process, then a counter in hex, so ids of
/// different instances sharing a database do not collide and making one costs no system call.
public enum RequestID {
    static let prefix = RandomSecret.string(count: 8)
    static let counter = Atomic<UInt64>(0)
    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// The next id: 16 characters.
    public static func next() -> String {
        let value = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return prefix + String(unsafeUninitializedCapacity: 8) { buffer in
            for index in 0..<8 { buffer[index] = hex[Int((value >> UInt64(28 - 4 * index)) & 0xf)] }
            return 8
        }
    }
}
