import SluiceCore
import Synchronization

/// Groups, channels and prices: small tables read on every call, held as one immutable snapshot that is replaced
/// whenever one of them changes.
public final class Catalog: Sendable {
    /// One consistent view.
    public struct Snapshot: Sendable {
        public let groups: [String: Group]
        public let channels: [Channel]
        public let prices: [String: ModelPrice]

        public init(groups: [String: Group], channels: [Channel], prices: [String: ModelPrice]) {
            self.groups = groups
            self.channels = channels
            self.prices = prices
        }

        /// Enabled channels of `group` that serve `model`.
        public func channels(group: String, model: String) -> [Channel] {
            channels.filter { $0.serves(model: model, group: group) }
        }

        /// Every model some enabled channel serves for `group`.
        public func models(group: String) -> Set<String> {
            var models = Set<String>()
            for channel in channels where channel.status == Channel.Status.enabled && channel.groups.contains(group) {
                models.formUnion(channel.models)
            }
            return models
        }
    }

    let groupStore: GroupStore
    let channelStore: ChannelStore
    let priceStore: PriceStore
    private let current = Mutex(Snapshot(groups: [:], channels: [], prices: [:]))
    /// Reloads run one at a time, first come first served, so a slower older reload never overwrites a newer one.
    private let reloading = AsyncLock()

    public init(groups: GroupStore, channels: ChannelStore, prices: PriceStore) {
        groupStore = groups
        channelStore = channels
        priceStore = prices
    }

    /// The snapshot in force.
    public var snapshot: Snapshot { current.withLock { $0 } }

    /// Reads every table again and swaps the snapshot.
    public func reload() async throws {
        await reloading.lock()
        do {
            try await load()
            await reloading.unlock()
        } catch {
            await reloading.unlock()
            throw error
        }
    }

    private func load() async throws {
        let groups = try await groupStore.all()
        let channels = try await channelStore.all()
        let prices = try await priceStore.all()
        let snapshot = Snapshot(groups: Dictionary(groups.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }),
                                channels: channels,
                                prices: Dictionary(prices.map { ($0.price.model, $0.price) }, uniquingKeysWith: { a, _ in a }))
        current.withLock { $0 = snapshot }
    }
}
