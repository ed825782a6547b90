import KilnDigest
import KilnOCI
import Testing
@testable import KilnLayer

/// The stored-bytes read-ahead hands its consumer whole buffers, however the source delivers its bytes.
@Suite struct StoredReadAheadTests {
    /// Delivers a blob a few bytes at a time, as a registry's connection does; counts what it was asked.
    final class TricklingReader: BlobReader {
        struct Broken: Error, Equatable {}
        let bytes: [UInt8]
        let piece: Int
        /// The connection breaks once this many bytes have been delivered.
        let breaksAfter: Int?
        private var position = 0
        private(set) var reads = 0

        init(bytes: [UInt8], piece: Int, breaksAfter: Int? = nil) {
            self.bytes = bytes
            self.piece = piece
            self.breaksAfter = breaksAfter
        }

        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            reads += 1
            if let breaksAfter, position >= breaksAfter { throw Broken() }
            let n = min(piece, buffer.count, bytes.count - position)
            guard n > 0, let base = buffer.baseAddress else { return 0 }
            bytes.withUnsafeBytes { source in
                if let s = source.baseAddress { base.copyMemory(from: s + position, byteCount: n) }
            }
            position += n
            return n
        }
    }

    /// Collects every stored byte the read-ahead passes on, in the sizes it passes them.
    final class Collector: @unchecked Sendable {
        var sizes: [Int] = []
        var bytes: [UInt8] = []
        var sink: StoredBytesSink {
            StoredBytesSink { [self] chunk in
                sizes.append(chunk.count)
                bytes.append(contentsOf: chunk)
            }
        }
    }

    @Test func smallDeliveriesAreGatheredIntoWholeBuffers() throws {
        let size = StoredReadAhead.chunkSize * 2 + 12_345
        let blob = (0..<size).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        let source = TricklingReader(bytes: blob, piece: 1000)
        let sink = Collector()
        let readAhead = StoredReadAhead(reader: source, sink: sink.sink)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: StoredReadAhead.chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        var read: [UInt8] = []
        var counts: [Int] = []
        while true {
            let n = try readAhead.read(into: buffer)
            if n == 0 { break }
            counts.append(n)
            read.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        #expect(read == blob)
        #expect(sink.bytes == blob)
        // Two whole buffers, then what was left: not one hand-off per 1000-byte delivery.
        #expect(counts == [StoredReadAhead.chunkSize, StoredReadAhead.chunkSize, 12_345])
        #expect(sink.sizes == counts)
        #expect(source.reads > size / 1000)
        #expect(readAhead.hasher.finalize() == SHA256Hasher.hash(blob))
    }

    @Test func bytesBeforeABrokenConnectionArePassedOnThenTheFailure() throws {
        let blob = (0..<(StoredReadAhead.chunkSize + 5000)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let breaksAfter = StoredReadAhead.chunkSize + 3000
        let source = TricklingReader(bytes: blob, piece: 1000, breaksAfter: breaksAfter)
        let sink = Collector()
        let readAhead = StoredReadAhead(reader: source, sink: sink.sink)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: StoredReadAhead.chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        var read: [UInt8] = []
        #expect(throws: TricklingReader.Broken()) {
            while true {
                let n = try readAhead.read(into: buffer)
                if n == 0 { break }
                read.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
        }
        #expect(read == Array(blob[0..<breaksAfter]))
        #expect(sink.bytes == read)
    }
}
