/// A pricing tier: a price multiplier, a model whitelist and rate limits.
public struct Group: Sendable, Hashable {
    public var id: Int64
    /// Unique name, used on tokens and users.
    public var name: String
    public var description: String
    /// Price multiplier.
    public var ratio: Micros
    /// Models this group serves; empty means every model.
    public var models: [String]
    /// Calls per minute per user in this group (0 = unlimited).
    public var rpm: Int
    /// Tokens per minute per user in this group (0 = unlimited).
    public var tpm: Int
    /// Whether users may put this group on their tokens.
    public var selectable: Bool

    public init(id: Int64, name: String, description: String, ratio: Micros, models: [String], rpm: Int, tpm: Int, selectable: Bool) {
        self.id = id
        self.name = name
        self.description = description
        self.ratio = ratio
        self.models = models
        self.rpm = rpm
        self.tpm = tpm
        self.selectable = selectable
    }

    /// The group every installation starts with.
    public static let defaultName = "default"

    /// Whether the group limits its key holders' requests or tokens per minute.
    public var limited: Bool { rpm > 0 || tpm > 0 }

    /// Whether the group's whitelist lets `model` through.
    public func allows(model: String) -> Bool { models.isEmpty || models.contains(model) }

    /// Checks a group name: 1..32 characters of letters, digits, `_`, `-`, `.`.
    public static func validateName(_ name: String) throws(ValidationError) {
        guard (1...32).contains(name.count) else { throw ValidationError("name must be 1 to 32 characters long") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
        guard name.allSatisfy(allowed.contains) else { throw ValidationError("name may contain only letters, digits and _ - .") }
    }
}
