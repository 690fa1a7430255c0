import NIOCore
import SluiceCore
import SluiceStore
import Synchronization

/// A streamed answer in flight: upstream events go to the client as they come (untouched, or translated), usage is
/// read on the way, and the call is settled exactly once — in full at the end, for the prompt and what was delivered
/// when the client leaves, not at all when the upstream fails.
public final class StreamRelay: Sendable {
    let engine: RelayEngine
    let call: RelayEngine.Admitted
    let channel: Channel
    let group: Group
    let plan: UpstreamPlan
    let body: UpstreamBody
    private let finished = Mutex(false)

    init(engine: RelayEngine, call: RelayEngine.Admitted, channel: Channel, group: Group, plan: UpstreamPlan, body: UpstreamBody) {
        self.engine = engine
        self.call = call
        self.channel = channel
        self.group = group
        self.plan = plan
        self.body = body
    }

    deinit {
        // Never pumped (the client left before the answer began): nothing was delivered, nothing is charged.
        if !finished.withLock({ $0 }) { engine.ledger.release(call.reservation) }
    }

    /// The client went away while we wrote to it.
    struct ClientGone: Error {}

    /// The upstream ended its stream without sending a single event.
    struct EmptyStream: Error, CustomStringConvertible {
        var description: String { "the upstream ended the stream without sending anything" }
    }

    /// Copies the stream to the client through `writer`; returns when the stream ends or the client leaves.
    nonisolated(nonsending) public func pump(_ writer: inout some StreamWriter) async throws {
        var tracker = StreamUsageTracker(upstream: plan.translate == .openAIOverAnthropic ? .anthropic
                                            : plan.translate == .anthropicOverOpenAI ? .openai : call.request.endpoint.format)
        do {
            // Two loops in functions of their own: an open stream keeps the frames of what it is running for as long as
            // it is open, so the common case does not carry the translators' state.
            if plan.translate == .none {
                try await forward(to: &writer, tracker: &tracker)
            } else {
                try await translate(to: &writer, tracker: &tracker)
            }
            await finish(charge: tracker.usage(promptEstimate: call.promptEstimate), note: "")
        } catch is ClientGone {
            // The client left: charge the prompt and what was delivered, and close the upstream connection.
            body.cancel()
            await finish(charge: tracker.usage(promptEstimate: call.promptEstimate), note: "client disconnected")
            throw ClientGone()
        } catch {
            // The upstream failed mid-stream: no charge; tell the client in its format.
            await finish(charge: nil, note: RelayEngine.describe(error))
            let failure = RelayError(status: 502, code: "upstream_error", type: "server_error",
                                     message: "The upstream stream failed: \(RelayEngine.describe(error))")
            var out = ByteBuffer()
            switch call.request.endpoint.format {
            case .openai: out.writeString(SSEEvent(data: String(buffer: RelayErrorBody.render(failure, format: .openai))).wire)
            case .anthropic: out.writeString(SSEEvent(event: "error", data: String(buffer: RelayErrorBody.render(failure, format: .anthropic))).wire)
            }
            try? await writer.write(out)
        }
    }

    nonisolated(nonsending) private static func send(_ buffer: ByteBuffer, to writer: inout some StreamWriter) async throws {
        do { try await writer.write(buffer) } catch { throw ClientGone() }
    }

    /// The upstream's bytes as they came, event by event; only the usage chunk the caller did not ask for is left
    /// out. Each event's data is read in place for usage.
    @inline(never)
    nonisolated(nonsending) private func forward(to writer: inout some StreamWriter, tracker: inout StreamUsageTracker) async throws {
        var framer = SSEFramer()
        var receivedEvents = 0
        let strip = plan.stripUsageChunk
        func visit(_ data: UnsafeBufferPointer<UInt8>) -> Bool {
            receivedEvents += 1
            return tracker.observe(data: data) && strip
        }
        for try await chunk in body {
            let out = framer.feed(chunk, visit)
            if out.readableBytes > 0 { try await Self.send(out, to: &writer) }
        }
        let out = framer.finish(visit)
        if receivedEvents == 0 { throw EmptyStream() }
        if out.readableBytes > 0 { try await Self.send(out, to: &writer) }
    }

    /// Events parsed, translated to the caller's format and written anew.
    @inline(never)
    nonisolated(nonsending) private func translate(to writer: inout some StreamWriter, tracker: inout StreamUsageTracker) async throws {
        var parser = SSEParser()
        var toAnthropic = OpenAIToAnthropicStream(model: plan.clientModel)
        var toOpenAI = AnthropicToOpenAIStream(model: plan.clientModel, includeUsage: plan.clientWantsUsage)
        var receivedEvents = 0
        func translated(_ events: [SSEEvent]) -> ByteBuffer {
            var out = ByteBuffer()
            for event in events {
                tracker.observe(event)
                let produced: [SSEEvent]
                switch plan.translate {
                case .none: produced = [event]
                case .anthropicOverOpenAI: produced = toAnthropic.translate(event)
                case .openAIOverAnthropic: produced = toOpenAI.translate(event)
                }
                for item in produced { out.writeString(item.wire) }
            }
            return out
        }
        for try await chunk in body {
            let events = parser.feed(chunk.readableBytesView)
            receivedEvents += events.count
            let out = translated(events)
            if out.readableBytes > 0 { try await Self.send(out, to: &writer) }
        }
        let tail = parser.finish()
        receivedEvents += tail.count
        if receivedEvents == 0 { throw EmptyStream() }
        var out = translated(tail)
        switch plan.translate {
        case .none: break
        case .anthropicOverOpenAI: for item in toAnthropic.finish() { out.writeString(item.wire) }
        case .openAIOverAnthropic: for item in toOpenAI.finish() { out.writeString(item.wire) }
        }
        if out.readableBytes > 0 { try await Self.send(out, to: &writer) }
    }

    /// Settles once: charges `charge` usage, or releases when nil.
    nonisolated(nonsending) func finish(charge usage: Usage?, note: String) async {
        let first = finished.withLock { done -> Bool in
            if done { return false }
            done = true
            return true
        }
        guard first else { return }
        if let usage {
            engine.health.succeeded(channel.id)
            await engine.settle(call, channel: channel, group: group, usage: usage, stream: true, note: note)
        } else {
            engine.health.failed(channel.id, error: note)
            engine.ledger.release(call.reservation)
            engine.ledger.record(engine.failureLog(call, message: "stream failed: \(note)"))
        }
    }
}

/// Where a stream goes: the client's connection.
public protocol StreamWriter {
    nonisolated(nonsending) mutating func write(_ buffer: ByteBuffer) async throws
}

/// Reads usage (and counts delivered text, for upstreams that report none) from the upstream's events.
struct StreamUsageTracker {
    let upstream: RelayFormat
    var reported: Usage?
    var promptReported: Int?
    var deliveredBytes = 0

    init(upstream: RelayFormat) { self.upstream = upstream }

    /// Reads an event; answers whether it is an OpenAI usage-only chunk (no choices, a usage).
    @discardableResult
    mutating func observe(_ event: SSEEvent) -> Bool {
        var data = event.data
        return data.withUTF8 { observe(data: $0) }
    }

    /// Reads an event's data in place; answers whether it is an OpenAI usage-only chunk (no choices, a usage).
    mutating func observe(data: UnsafeBufferPointer<UInt8>) -> Bool {
        if data.count == 6, data.elementsEqual("[DONE]".utf8) { return false }
        guard let facts = AnswerFacts.scan(data) else { return false }
        switch upstream {
        case .openai:
            if let usage = facts.usage.usage {
                reported = usage
                if !facts.hasChoices { return true }
            }
            deliveredBytes += facts.choiceTextBytes
        case .anthropic:
            switch facts.type {
            case "message_start":
                let usage = facts.messageUsage
                if let input = usage.inputTokens { promptReported = input + (usage.cacheRead ?? 0) + (usage.cacheCreation ?? 0) }
            case "message_delta":
                if let output = facts.usage.outputTokens {
                    reported = Usage(prompt: promptReported ?? facts.usage.inputTokens ?? 0, completion: output)
                }
            case "content_block_delta":
                deliveredBytes += facts.deltaTextBytes
            default: break
            }
        }
        return false
    }

    /// The reported usage, else the prompt estimate and a count of the delivered text.
    func usage(promptEstimate: Int) -> Usage {
        if let reported { return reported }
        return Usage(prompt: promptReported ?? promptEstimate, completion: RelayEngine.estimateTokens(bytes: deliveredBytes))
    }
}
