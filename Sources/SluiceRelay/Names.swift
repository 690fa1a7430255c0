import SluiceCore

/// Sluice's upstream channel, not NIO's network channel.
typealias Channel = SluiceCore.Channel
