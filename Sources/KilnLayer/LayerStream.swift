import Foundation
import KilnDigest
import KilnOCI

/// One pass over a stored layer blob: reads it once, hashes the stored bytes, decompresses, and hashes the
/// decompressed bytes (the diffID) as they are handed out.
///
/// Reading and hashing the stored bytes run on one thread (``StoredReadAhead``), decompressing on a second, and
/// hashing the decompressed bytes and parsing the tar on the caller's thread, so one large layer keeps every
/// core of a small machine busy. Memory is a fixed pool of buffers whatever the layer size.
final class LayerStream: @unchecked Sendable {
    let compression: Compression
    /// Refuses to expand beyond this many bytes (decompression bombs).
    let uncompressedLimit: Int64

    // Producer side. Written only by the producer thread until it posts the end of the stream.
    private let source: StoredReadAhead
    private let decompressor: Decompressor
    /// sha256 of the stored bytes; final once the stream has ended.
    var storedHasher: SHA256Hasher { source.hasher }
    private let input: UnsafeMutableRawBufferPointer
    private var inputStart = 0
    private var inputEnd = 0
    private var inputExhausted = false
    private var produced: Int64 = 0
    /// Bytes read from the blob.
    private(set) var storedBytes: Int64 = 0
    /// Set when the compressed stream ended before its end marker.
    private(set) var undersized = false
    /// Set when bytes follow the end of the compressed stream.
    private(set) var trailingData = false
    /// The first decompression error, with how many stored bytes had been read when it happened.
    private(set) var decompressionError: (offset: Int64, error: DecompressionError)?
    private var readError: Swift.Error?
    private var cancelled = ManagedAtomicFlag()

    // Consumer side.
    let diffHasher = SHA256Hasher()
    /// Decompressed bytes handed out so far.
    private(set) var uncompressedBytes: Int64 = 0
    private var current: UnsafeMutableRawBufferPointer?
    private var ended = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    private let free = BlockingQueue<UnsafeMutableRawBufferPointer>()
    private let filled = BlockingQueue<(UnsafeMutableRawBufferPointer, Int)?>()
    private var pool: [UnsafeMutableRawBufferPointer] = []

    static let inputSize = 1 << 20
    static let chunkSize = 1 << 20
    /// Decompressed buffers between the decompressing thread and the consumer. With four, on two cores, the
    /// threads waited on each other whenever the scheduler ran the other stages for a while: eight bake the
    /// benchmark image about 5% faster for 4 MiB more per stream. Sixteen were faster on the disk in one
    /// comparison and no different in another, and put the rootfs bake over its memory budget (64 MiB + 1 KiB
    /// per entry).
    static let poolSize = 8

    init(reader: any BlobReader, compression: Compression, uncompressedLimit: Int64 = .max, storedSink: StoredBytesSink? = nil) {
        self.source = StoredReadAhead(reader: reader, sink: storedSink)
        self.compression = compression
        self.uncompressedLimit = uncompressedLimit
        switch compression {
        case .gzip: decompressor = GzipDecompressor()
        case .zstd: decompressor = ZstdDecompressor()
        case .none: decompressor = PassThroughDecompressor()
        }
        input = .allocate(byteCount: Self.inputSize, alignment: 64)
        for _ in 0..<Self.poolSize {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 64)
            pool.append(b)
            free.push(b)
        }
        let t = Thread { [unowned self] in
            self.produce()
            self.finished.signal()
        }
        t.name = "kiln.layer-reader"
        t.stackSize = 1 << 20
        thread = t
        t.start()
    }

    deinit {
        close()
        input.deallocate()
        for b in pool { b.deallocate() }
    }

    /// True once decompression failed (only meaningful after the end of the stream).
    var failed: Bool { decompressionError != nil }

    /// True when decompression stopped at ``uncompressedLimit``.
    var exceededLimit: Bool {
        if case .exceedsLimit = decompressionError?.error { return true }
        return false
    }

    /// Stops the producer and waits for it; safe to call more than once.
    func close() {
        guard thread != nil else { return }
        cancelled.set()
        if let c = current { free.push(c); current = nil }
        if !ended {
            while let chunk = filled.pop() { free.push(chunk.0) }
            ended = true
        }
        finished.wait()
        thread = nil
        source.close()
    }

    /// The next decompressed bytes, valid until the following call; empty at the end of the stream.
    func next() throws -> UnsafeRawBufferPointer {
        if let c = current { free.push(c); current = nil }
        if ended { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard let (buffer, count) = filled.pop() else {
            ended = true
            finished.wait()
            thread = nil
            source.close()
            if let e = readError { throw e }
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        current = buffer
        let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        diffHasher.update(chunk)
        uncompressedBytes += Int64(count)
        return chunk
    }

    /// Reads everything that is left so both digests cover the whole blob and stream.
    /// Returns true when the drained decompressed bytes held anything but zeros.
    func drain() throws -> Bool {
        var nonZero = false
        while true {
            let chunk = try next()
            if chunk.isEmpty { break }
            if !nonZero { nonZero = chunk.contains { $0 != 0 } }
        }
        return nonZero
    }

    // MARK: producer

    private func produce() {
        defer { filled.push(nil) }
        do {
            while !cancelled.isSet {
                let out = free.pop()
                let n = try fill(out)
                if n == 0 {
                    free.push(out)
                    break
                }
                filled.push((out, n))
            }
            if cancelled.isSet { return }
            // Whatever follows a decompression failure is still part of the stored digest.
            try hashRemainder()
        } catch {
            readError = error
        }
    }

    private func hashRemainder() throws {
        inputStart = inputEnd
        while !cancelled.isSet {
            let n = try source.read(into: input)
            if n == 0 { break }
            storedBytes += Int64(n)
        }
    }

    private func refill() throws {
        if inputStart == inputEnd && !inputExhausted {
            let n = try source.read(into: input)
            if n == 0 {
                inputExhausted = true
            } else {
                storedBytes += Int64(n)
                inputStart = 0
                inputEnd = n
            }
        }
    }

    /// Decompresses into `output`; returns how many bytes (0 at the end of the stream or after an error).
    private func fill(_ output: UnsafeMutableRawBufferPointer) throws -> Int {
        if failed { return 0 }
        while true {
            try refill()
            let available = UnsafeRawBufferPointer(rebasing: input[inputStart..<inputEnd])
            if available.isEmpty && inputExhausted {
                // The decoder may still hold buffered output after its last input: flush it first.
                if !decompressor.atStreamBoundary && compression != .none {
                    let flushed: (consumed: Int, produced: Int)
                    do { flushed = try decompressor.process(input: available, output: output) } catch let e as DecompressionError {
                        decompressionError = (storedBytes, e)
                        return 0
                    }
                    if flushed.produced > 0 { return try account(flushed.produced) }
                    if !decompressor.atStreamBoundary { undersized = true }
                }
                return 0
            }
            if decompressor.atStreamBoundary && compression != .none && decompressor.isTrailingData(available) {
                trailingData = true
                inputStart = inputEnd
                continue
            }
            let result: (consumed: Int, produced: Int)
            do {
                result = try decompressor.process(input: available, output: output)
            } catch let e as DecompressionError {
                if case .trailingData = e {
                    trailingData = true
                } else {
                    decompressionError = (storedBytes, e)
                }
                inputStart = inputEnd
                return 0
            }
            inputStart += result.consumed
            if result.produced > 0 { return try account(result.produced) }
            if result.consumed == 0 && !available.isEmpty && !decompressor.atStreamBoundary {
                // No progress with input available: the decoder wants more input than this buffer holds.
                try growInput()
            }
        }
    }

    private func account(_ n: Int) throws -> Int {
        produced += Int64(n)
        if produced > uncompressedLimit {
            decompressionError = (storedBytes, .exceedsLimit(compression, limit: uncompressedLimit))
            return 0
        }
        return n
    }

    private func growInput() throws {
        guard let base = input.baseAddress else { return }
        if inputStart > 0 {
            let remaining = inputEnd - inputStart
            base.copyMemory(from: base + inputStart, byteCount: remaining)
            inputStart = 0
            inputEnd = remaining
        }
        guard inputEnd < input.count else { undersized = true; inputExhausted = true; return }
        let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: input[inputEnd...]))
        if n == 0 {
            inputExhausted = true
            undersized = true
            return
        }
        storedBytes += Int64(n)
        inputEnd += n
    }
}

/// A small FIFO that blocks on pop while empty. `nil` elements are allowed as end markers by callers.
final class BlockingQueue<Element>: @unchecked Sendable {
    private var items: [Element] = []
    private var head = 0
    private let condition = NSCondition()

    func push(_ e: Element) {
        condition.lock()
        items.append(e)
        condition.signal()
        condition.unlock()
    }

    func pop() -> Element {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count { condition.wait() }
        let e = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return e
    }
}

/// A flag set once, read from another thread.
struct ManagedAtomicFlag {
    private let storage = FlagStorage()
    var isSet: Bool { storage.get() }
    func set() { storage.set() }

    private final class FlagStorage: @unchecked Sendable {
        private var value = false
        private let lock = NSLock()
        func get() -> Bool { lock.lock(); defer { lock.unlock() }; return value }
        func set() { lock.lock(); value = true; lock.unlock() }
    }
}
