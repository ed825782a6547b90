import CISAL
import CZstd
import KilnOCI

/// A streaming decompressor: consumes input, produces output, knows when its stream has ended.
protocol Decompressor: AnyObject {
    /// Decompresses from `input` into `output`. Returns bytes consumed and produced.
    func process(input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) throws -> (consumed: Int, produced: Int)
    /// True when the compressed stream has ended cleanly (all members or frames complete).
    var atStreamBoundary: Bool { get }
    /// True when the decoder reached the end of a stream and `input` does not start another one.
    func isTrailingData(_ input: UnsafeRawBufferPointer) -> Bool
}

/// Errors a compressed stream can raise.
public enum DecompressionError: Swift.Error, CustomStringConvertible, Equatable {
    case corrupt(Compression, String)
    /// Bytes after the last complete frame that do not start another one.
    case trailingData(Compression, String)
    /// The stream expands beyond the limit the caller set (a decompression bomb, or more than the volume holds).
    case exceedsLimit(Compression, limit: Int64)

    public var description: String {
        switch self {
        case .corrupt(let c, let detail): return "\(c) stream is corrupt: \(detail)"
        case .trailingData(let c, let detail): return "\(c) stream has trailing data after its last frame (\(detail))"
        case .exceedsLimit(let c, let limit): return "\(c) stream expands beyond the limit of \(limit) bytes"
        }
    }
}

/// Gzip through isa-l's igzip inflate (several times zlib's speed), multi-member streams included.
final class GzipDecompressor: Decompressor {
    private let state: UnsafeMutablePointer<inflate_state>
    private var memberDone = false
    private var started = false

    init() {
        state = .allocate(capacity: 1)
        isal_inflate_init(state)
        state.pointee.crc_flag = UInt32(ISAL_GZIP)
    }

    deinit { state.deallocate() }

    var atStreamBoundary: Bool { memberDone }

    func isTrailingData(_ input: UnsafeRawBufferPointer) -> Bool {
        guard memberDone, input.count > 0 else { return false }
        if input.count >= 2 { return !(input[0] == 0x1f && input[1] == 0x8b) }
        return input[0] != 0x1f
    }

    func process(input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) throws -> (consumed: Int, produced: Int) {
        var consumedTotal = 0
        if memberDone {
            guard input.count > 0 else { return (0, 0) }
            // Another gzip member follows (pigz and `cat a.gz b.gz` produce these).
            isal_inflate_reset(state)
            state.pointee.crc_flag = UInt32(ISAL_GZIP)
            memberDone = false
        }
        started = true
        state.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
        state.pointee.avail_in = UInt32(input.count)
        state.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        state.pointee.avail_out = UInt32(output.count)
        let rc = isal_inflate(state)
        consumedTotal = input.count - Int(state.pointee.avail_in)
        let produced = output.count - Int(state.pointee.avail_out)
        if rc < 0 {
            throw DecompressionError.corrupt(.gzip, Self.message(rc))
        }
        if state.pointee.block_state == ISAL_BLOCK_FINISH { memberDone = true }
        return (consumedTotal, produced)
    }

    static func message(_ rc: Int32) -> String {
        switch rc {
        case ISAL_INVALID_BLOCK: return "invalid deflate block"
        case ISAL_INVALID_SYMBOL: return "invalid deflate symbol"
        case ISAL_INVALID_LOOKBACK: return "invalid lookback distance"
        case ISAL_INVALID_WRAPPER: return "invalid gzip header"
        case ISAL_UNSUPPORTED_METHOD: return "unsupported compression method"
        case ISAL_INCORRECT_CHECKSUM: return "CRC-32 mismatch"
        default: return "inflate error \(rc)"
        }
    }
}

/// zstd through libzstd's streaming decoder; skippable frames (as in zstd:chunked) are skipped by the decoder.
final class ZstdDecompressor: Decompressor {
    private let stream: OpaquePointer
    private var frameDone = true
    private var sawInput = false

    init() {
        stream = ZSTD_createDStream()
        ZSTD_initDStream(stream)
    }

    deinit { ZSTD_freeDStream(stream) }

    var atStreamBoundary: Bool { frameDone && sawInput }

    func isTrailingData(_ input: UnsafeRawBufferPointer) -> Bool {
        // The decoder itself rejects bytes that are not a frame; it reports them as errors.
        false
    }

    func process(input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) throws -> (consumed: Int, produced: Int) {
        var inBuf = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuf = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        if input.count > 0 { sawInput = true }
        let rc = ZSTD_decompressStream(stream, &outBuf, &inBuf)
        if ZSTD_isError(rc) != 0 {
            let name = String(cString: ZSTD_getErrorName(rc))
            if frameDone && inBuf.pos == 0 && sawInput {
                throw DecompressionError.trailingData(.zstd, name.lowercased())
            }
            throw DecompressionError.corrupt(.zstd, name.lowercased())
        }
        // rc == 0: a frame is complete and fully flushed.
        if rc == 0 { frameDone = true } else if inBuf.pos > 0 || outBuf.pos > 0 { frameDone = false }
        return (inBuf.pos, outBuf.pos)
    }
}

/// Uncompressed layers: bytes pass through.
final class PassThroughDecompressor: Decompressor {
    var atStreamBoundary: Bool { true }
    func isTrailingData(_ input: UnsafeRawBufferPointer) -> Bool { false }

    func process(input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) throws -> (consumed: Int, produced: Int) {
        let n = min(input.count, output.count)
        if n > 0, let src = input.baseAddress, let dst = output.baseAddress { dst.copyMemory(from: src, byteCount: n) }
        return (n, n)
    }
}
