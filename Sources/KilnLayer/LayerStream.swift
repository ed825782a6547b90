import KilnDigest
import KilnOCI

/// One pass over a stored layer blob: reads it once, hashes the stored bytes, decompresses, and hashes the
/// decompressed bytes (the diffID) as they are handed out. Memory is two fixed buffers whatever the layer size.
final class LayerStream {
    private let reader: RangeReader
    private let decompressor: Decompressor
    let compression: Compression
    let storedHasher = SHA256Hasher()
    let diffHasher = SHA256Hasher()

    private let input: UnsafeMutableRawBufferPointer
    private var inputStart = 0
    private var inputEnd = 0
    private var inputExhausted = false
    let output: UnsafeMutableRawBufferPointer

    /// Bytes read from the blob.
    private(set) var storedBytes: Int64 = 0
    /// Decompressed bytes handed out so far.
    private(set) var uncompressedBytes: Int64 = 0
    /// Set when the compressed stream ended before its end marker.
    private(set) var undersized = false
    /// Set when bytes follow the end of the compressed stream.
    private(set) var trailingData = false
    /// The first decompression error, with the stored-byte offset where it happened.
    private(set) var decompressionError: (offset: Int64, error: DecompressionError)?
    /// Refuses to expand beyond this many bytes (decompression bombs).
    let uncompressedLimit: Int64

    static let inputSize = 1 << 20
    static let outputSize = 1 << 20

    init(reader: RangeReader, compression: Compression, uncompressedLimit: Int64 = .max) {
        self.reader = reader
        self.compression = compression
        self.uncompressedLimit = uncompressedLimit
        switch compression {
        case .gzip: decompressor = GzipDecompressor()
        case .zstd: decompressor = ZstdDecompressor()
        case .none: decompressor = PassThroughDecompressor()
        }
        input = .allocate(byteCount: Self.inputSize, alignment: 64)
        output = .allocate(byteCount: Self.outputSize, alignment: 64)
    }

    deinit {
        input.deallocate()
        output.deallocate()
    }

    /// True once decompression failed; later reads return end of stream.
    var failed: Bool { decompressionError != nil }

    private func refill() throws {
        if inputStart == inputEnd && !inputExhausted {
            let n = try reader.read(into: input)
            if n == 0 {
                inputExhausted = true
            } else {
                storedHasher.update(UnsafeRawBufferPointer(rebasing: input[0..<n]))
                storedBytes += Int64(n)
                inputStart = 0
                inputEnd = n
            }
        }
    }

    /// Produces the next decompressed bytes into `output`; returns how many (0 at the end of the stream).
    func next() throws -> Int {
        if failed { return 0 }
        while true {
            try refill()
            let available = UnsafeRawBufferPointer(rebasing: input[inputStart..<inputEnd])
            if available.isEmpty && inputExhausted {
                if !decompressor.atStreamBoundary && compression != .none { undersized = true }
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
                decompressionError = (storedBytes, e)
                if case .corrupt(_, let detail) = e, detail.hasPrefix("trailing data") { trailingData = true; decompressionError = nil }
                inputStart = inputEnd
                return 0
            }
            inputStart += result.consumed
            if result.produced > 0 {
                let chunk = UnsafeRawBufferPointer(rebasing: output[0..<result.produced])
                diffHasher.update(chunk)
                uncompressedBytes += Int64(result.produced)
                if uncompressedBytes > uncompressedLimit {
                    decompressionError = (storedBytes, .corrupt(compression, "expands beyond the limit of \(uncompressedLimit) bytes"))
                    return 0
                }
                return result.produced
            }
            if result.consumed == 0 && !available.isEmpty && !decompressor.atStreamBoundary {
                // No progress with input available: the decoder wants more input than this buffer holds.
                if inputStart > 0 {
                    let remaining = inputEnd - inputStart
                    input.baseAddress!.copyMemory(from: input.baseAddress! + inputStart, byteCount: remaining)
                    inputStart = 0
                    inputEnd = remaining
                }
                let n = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: input[inputEnd...]))
                if n == 0 { inputExhausted = true; undersized = true; return 0 }
                storedHasher.update(UnsafeRawBufferPointer(rebasing: input[inputEnd..<(inputEnd + n)]))
                storedBytes += Int64(n)
                inputEnd += n
            }
        }
    }

    /// Reads everything that is left so both digests cover the whole blob and stream.
    /// Returns true when the drained decompressed bytes held anything but zeros.
    func drain() throws -> Bool {
        var nonZero = false
        while true {
            let n = try next()
            if n == 0 { break }
            if !nonZero {
                nonZero = UnsafeRawBufferPointer(rebasing: output[0..<n]).contains { $0 != 0 }
            }
        }
        // Whatever remains after a decompression failure is still part of the stored digest.
        while true {
            if inputStart < inputEnd { inputStart = inputEnd }
            let n = try reader.read(into: input)
            if n == 0 { break }
            storedHasher.update(UnsafeRawBufferPointer(rebasing: input[0..<n]))
            storedBytes += Int64(n)
        }
        return nonZero
    }
}
