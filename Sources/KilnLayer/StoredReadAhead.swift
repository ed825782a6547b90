import Foundation
import KilnDigest
import KilnOCI

/// Receives a layer blob's stored bytes, in order, as they are read (for example to place a copy of the blob
/// in a content store while the layer is unpacked). Called on a thread of its own; failures are the sink's to
/// record and report.
public struct StoredBytesSink: Sendable {
    let receive: @Sendable (UnsafeRawBufferPointer) -> Void

    public init(_ receive: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.receive = receive
    }
}

/// Reads a stored blob ahead on a thread of its own, hashing the stored bytes and handing them to an optional
/// ``StoredBytesSink`` as they arrive, so the decompressing thread only decompresses.
///
/// The blob is read exactly once: what is hashed, what the sink receives and what is decompressed are the same
/// bytes. Memory is a fixed pool of buffers.
final class StoredReadAhead: @unchecked Sendable {
    /// sha256 of every stored byte read so far; final once ``read(into:)`` has returned 0.
    let hasher = SHA256Hasher()

    private let reader: any BlobReader
    private let sink: StoredBytesSink?
    private let free = BlockingQueue<UnsafeMutableRawBufferPointer>()
    /// Filled buffers with their byte counts; `nil` ends the stream (after the last byte or an error).
    private let filled = BlockingQueue<(UnsafeMutableRawBufferPointer, Int)?>()
    private var pool: [UnsafeMutableRawBufferPointer] = []
    private let cancelled = ManagedAtomicFlag()
    private let finished = DispatchSemaphore(value: 0)
    private var running = true
    /// Written by the reading thread before it posts the end; read after the end.
    private var readError: Swift.Error?

    // Consumer side.
    private var current: (buffer: UnsafeMutableRawBufferPointer, start: Int, end: Int)?
    private var ended = false

    static let chunkSize = 1 << 20
    static let poolSize = 4

    init(reader: any BlobReader, sink: StoredBytesSink?) {
        self.reader = reader
        self.sink = sink
        for _ in 0..<Self.poolSize {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 64)
            pool.append(b)
            free.push(b)
        }
        let t = Thread { [unowned self] in
            self.readAll()
            self.finished.signal()
        }
        t.name = "kiln.layer-read"
        t.stackSize = 1 << 20
        t.start()
    }

    deinit {
        close()
        for b in pool { b.deallocate() }
    }

    /// Copies the next stored bytes into `buffer`; 0 at the end of the blob.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let destination = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        while true {
            if var c = current {
                let n = min(buffer.count, c.end - c.start)
                if let source = c.buffer.baseAddress {
                    destination.copyMemory(from: source + c.start, byteCount: n)
                }
                c.start += n
                if c.start == c.end {
                    free.push(c.buffer)
                    current = nil
                } else {
                    current = c
                }
                return n
            }
            if ended { return 0 }
            guard let (b, n) = filled.pop() else {
                ended = true
                join()
                if let e = readError { throw e }
                return 0
            }
            current = (b, 0, n)
        }
    }

    /// Stops reading and waits for the reading thread; safe to call more than once.
    func close() {
        guard running else { return }
        cancelled.set()
        if let c = current {
            free.push(c.buffer)
            current = nil
        }
        if !ended {
            while let chunk = filled.pop() { free.push(chunk.0) }
            ended = true
        }
        join()
    }

    private func join() {
        guard running else { return }
        finished.wait()
        running = false
    }

    private func readAll() {
        defer {
            reader.finish()
            filled.push(nil)
        }
        while !cancelled.isSet {
            let b = free.pop()
            let (n, failure) = fill(b)
            if n > 0 {
                let bytes = UnsafeRawBufferPointer(rebasing: b[0..<n])
                hasher.update(bytes)
                sink?.receive(bytes)
                filled.push((b, n))
            } else {
                free.push(b)
            }
            // Bytes that arrived before a failure are passed on first, as they were read.
            if let failure { readError = failure }
            if n == 0 || failure != nil { return }
        }
    }

    /// Reads until `buffer` is full, the blob ends or reading fails. A registry's reader hands over what has
    /// arrived, often a few KiB at a time: a buffer per arrival multiplied the hand-offs to the inflating thread
    /// and the writes of the blob's copy, and shrank the read-ahead to a few small pieces.
    private func fill(_ buffer: UnsafeMutableRawBufferPointer) -> (count: Int, failure: (any Swift.Error)?) {
        var count = 0
        while count < buffer.count, !cancelled.isSet {
            do {
                let n = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
                if n == 0 { break }
                count += n
            } catch {
                return (count, error)
            }
        }
        return (count, nil)
    }
}
