import NIOCore

/// Cuts an upstream's event stream into whole events and hands back their bytes as they came.
///
/// The relay forwards whole events only: bytes of an event that is not complete yet wait for the rest, so an event
/// can be left out (the usage chunk the caller did not ask for) without cutting another. Each event's `data` is
/// shown to the caller in place, without copying, unless it spans several `data:` lines.
struct SSEFramer {
    private var pending = ByteBuffer()

    /// Takes `chunk`; answers the bytes of the events it completed, less those `visit` drops. `visit` sees the
    /// `data` of each event that has one and answers whether to drop the event.
    mutating func feed(_ chunk: ByteBuffer, _ visit: (UnsafeBufferPointer<UInt8>) -> Bool) -> ByteBuffer {
        var input: ByteBuffer
        if pending.readableBytes == 0 {
            input = chunk
        } else {
            pending.writeImmutableBuffer(chunk)
            input = pending
        }
        var dropped: [Range<Int>] = []
        let complete = input.withUnsafeReadableBytes { raw -> Int in
            let bytes = raw.assumingMemoryBound(to: UInt8.self)
            var eventStart = 0, lineStart = 0
            var dataRange: Range<Int>?
            var joined: [UInt8]?
            while lineStart < bytes.count, let newline = Self.newline(in: bytes, from: lineStart) {
                var lineEnd = newline
                if lineEnd > lineStart, bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                if lineEnd == lineStart {
                    // A blank line ends the event.
                    var drop = false
                    if var joined {
                        drop = joined.withUnsafeMutableBufferPointer { visit(UnsafeBufferPointer($0)) }
                    } else if let dataRange {
                        drop = visit(UnsafeBufferPointer(rebasing: bytes[dataRange]))
                    }
                    if drop { dropped.append(eventStart..<(newline + 1)) }
                    eventStart = newline + 1
                    dataRange = nil
                    joined = nil
                } else if lineEnd - lineStart >= 5, bytes[lineStart] == UInt8(ascii: "d"), bytes[lineStart + 1] == UInt8(ascii: "a"),
                          bytes[lineStart + 2] == UInt8(ascii: "t"), bytes[lineStart + 3] == UInt8(ascii: "a"),
                          bytes[lineStart + 4] == UInt8(ascii: ":") {
                    var valueStart = lineStart + 5
                    if valueStart < lineEnd, bytes[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
                    let value = valueStart..<lineEnd
                    if let first = dataRange {
                        // Several data lines: their values joined by newlines, as the SSE format says.
                        if joined == nil { joined = Array(bytes[first]) }
                        joined!.append(0x0A)
                        joined!.append(contentsOf: bytes[value])
                    } else {
                        dataRange = value
                    }
                }
                lineStart = newline + 1
            }
            return eventStart
        }
        var out: ByteBuffer
        if dropped.isEmpty {
            out = input.getSlice(at: input.readerIndex, length: complete)!
        } else {
            out = ByteBuffer()
            var from = 0
            for range in dropped {
                out.writeImmutableBuffer(input.getSlice(at: input.readerIndex + from, length: range.lowerBound - from)!)
                from = range.upperBound
            }
            out.writeImmutableBuffer(input.getSlice(at: input.readerIndex + from, length: complete - from)!)
        }
        input.moveReaderIndex(forwardBy: complete)
        if input.readableBytes == 0 {
            pending = ByteBuffer()
        } else {
            pending = ByteBuffer()
            pending.writeImmutableBuffer(input)
        }
        return out
    }

    /// Ends the stream: a last event without its blank line still counts.
    mutating func finish(_ visit: (UnsafeBufferPointer<UInt8>) -> Bool) -> ByteBuffer {
        guard pending.readableBytes > 0 else { return ByteBuffer() }
        return feed(ByteBuffer(string: "\n\n"), visit)
    }

    private static func newline(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            if bytes[index] == 0x0A { return index }
            index += 1
        }
        return nil
    }
}
