import Foundation
import KilnCore
import KilnDigest
import KilnDisk

/// What ``BlockHasher`` found in an image file.
public struct BlockHashes: Sendable, Hashable {
    /// The block size in bytes.
    public var blockSize: Int
    /// The image file's size in bytes.
    public var fileSize: UInt64
    /// Blocks in the file, the last one possibly partial.
    public var blockCount: UInt64
    /// Every written (not all-zero) block, in ascending index.
    public var written: [BlockDigest]
    /// The LINEAR aggregate checksum of ``written`` (base64).
    public var linearChecksum: String
    /// sha256 of the whole file, when it was asked for.
    public var fileDigest: Digest?
    /// Blocks that were read and tested (the others lie in holes), including those known beforehand.
    public var blocksRead: UInt64
    /// Of ``blocksRead``, the blocks whose digest was known beforehand (hashed while the image was written).
    public var blocksKnown: UInt64 = 0

    public init(blockSize: Int, fileSize: UInt64, blockCount: UInt64, written: [BlockDigest], linearChecksum: String,
                fileDigest: Digest?, blocksRead: UInt64, blocksKnown: UInt64 = 0) {
        self.blocksKnown = blocksKnown
        self.blockSize = blockSize
        self.fileSize = fileSize
        self.blockCount = blockCount
        self.written = written
        self.linearChecksum = linearChecksum
        self.fileDigest = fileDigest
        self.blocksRead = blocksRead
    }

    /// Number of written blocks.
    public var writtenCount: UInt64 { UInt64(written.count) }
    /// `writtenCount * blockSize`: what an EBS snapshot of the file stores.
    public var writtenBytes: UInt64 { writtenCount * UInt64(blockSize) }
}

/// Hashes an image file once, in EBS snapshot blocks, on all cores.
///
/// Worker threads claim contiguous stripes of blocks and `pread` them; a block that is all zeros counts as not
/// written, because EBS does not store it (coldsnap skips it too). Holes found with `SEEK_DATA`/`SEEK_HOLE` are
/// never read, so a sparse 200 GB image costs what its data costs. A partial last block is hashed padded with
/// zeros to the full block size, as it is uploaded.
///
/// The sha256 of the whole file is inherently sequential: when asked for, it runs on a thread of its own over
/// the same pages (holes fed from a zero buffer without reading), overlapping the block hashing.
///
/// Memory is constant apart from the result: 40 bytes per written block plus a few MiB of buffers per thread.
public struct BlockHasher: Sendable {
    /// The EBS snapshot block size.
    public static let ebsBlockSize = 524_288
    /// The largest block size accepted (buffers are a few blocks per thread).
    public static let maximumBlockSize = 64 << 20

    /// The block size in bytes.
    public var blockSize: Int
    /// Threads hashing blocks (the whole-file hash, when asked for, takes one of them).
    public var threads: Int
    /// Whether to compute the sha256 of the whole file as well.
    public var fileDigest: Bool
    /// Blocks a worker claims at a time.
    public var stripeBlocks: Int
    /// Whether to skip holes (false reads every block; for tests and file systems that misreport holes).
    public var skipHoles: Bool
    /// Whether to hash the file's pages in place through short-lived read-only mappings instead of copying them
    /// out. Faster, but only for a file nothing truncates while it is hashed (a bake's own output): a page past a
    /// new end of file would fault.
    public var memoryMapped: Bool
    /// Counts the bytes of written blocks as they are hashed (the total is every block that holds data).
    public var progress: ProgressCounter?
    /// Blocks already hashed (``LiveBlockHasher``), which are not read again; only valid for this very file.
    public var known: HashedBlocks?

    public init(blockSize: Int = BlockHasher.ebsBlockSize, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                fileDigest: Bool = true, stripeBlocks: Int = 64, skipHoles: Bool = true, memoryMapped: Bool = false) {
        self.blockSize = blockSize
        self.threads = threads
        self.fileDigest = fileDigest
        self.stripeBlocks = stripeBlocks
        self.skipHoles = skipHoles
        self.memoryMapped = memoryMapped
    }

    /// Errors raised while hashing.
    public enum Error: Swift.Error, CustomStringConvertible {
        case invalidBlockSize(Int)
        case io(String)

        public var description: String {
            switch self {
            case .invalidBlockSize(let s): return "block size \(s) is not a multiple of 4096 between 4096 and \(BlockHasher.maximumBlockSize)"
            case .io(let message): return message
            }
        }
    }

    /// Hashes the file at `path`.
    public func hash(path: String) throws -> BlockHashes {
        guard blockSize > 0, blockSize % 4096 == 0, blockSize <= Self.maximumBlockSize else { throw Error.invalidBlockSize(blockSize) }
        let file: ImageFile
        do { file = try ImageFile(path: path) } catch { throw Error.io("\(error)") }
        if memoryMapped { file.mapPages() }
        let bs = UInt64(blockSize)
        let runs = file.dataBlockRuns(blockSize: bs, useHoles: skipHoles)
        let stripes = Self.stripes(of: runs, blocks: UInt64(max(1, stripeBlocks)))
        // Digests of another block size say nothing about these blocks.
        let usable = known?.blockSize == blockSize ? known : nil
        let job = HashJob(file: file, blockSize: blockSize, stripes: stripes, progress: progress, known: usable)
        progress?.start(phase: "blocks", totalBytes: Int64(runs.reduce(0) { $0 + UInt64($1.count) } * bs), item: path)
        let workers = max(1, fileDigest ? threads - 1 : threads)

        runThreads(workers + (fileDigest ? 1 : 0)) { id in
            if id == workers {
                job.hashWholeFile(dataRuns: runs)
            } else {
                job.hashStripes()
            }
        }
        if let failure = job.failure { throw Error.io("\(failure)") }

        var written: [BlockDigest] = []
        written.reserveCapacity(job.results.reduce(0) { $0 + $1.count })
        for r in job.results { written.append(contentsOf: r) }
        return BlockHashes(
            blockSize: blockSize, fileSize: file.size, blockCount: (file.size + bs - 1) / bs, written: written,
            linearChecksum: LinearChecksum.compute(written), fileDigest: job.fileDigest,
            blocksRead: runs.reduce(0) { $0 + UInt64($1.count) }, blocksKnown: job.knownUsed)
    }

    /// Splits runs of blocks into stripes of at most `blocks` blocks, in ascending order.
    static func stripes(of runs: [Range<UInt64>], blocks: UInt64) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        for run in runs {
            var start = run.lowerBound
            while start < run.upperBound {
                let end = min(run.upperBound, start + blocks)
                out.append(start..<end)
                start = end
            }
        }
        return out
    }
}

/// The shared state of one hashing job: the stripe queue, per-stripe results and the first failure.
private final class HashJob: @unchecked Sendable {
    let file: ImageFile
    let blockSize: Int
    let stripes: [Range<UInt64>]
    private let lock = NSLock()
    private var next = 0
    // Written only under `lock`; read after every thread has finished.
    private(set) var results: [[BlockDigest]]
    private(set) var failure: Swift.Error?
    private(set) var fileDigest: Digest?
    private(set) var knownUsed: UInt64 = 0

    /// Blocks read per `pread`.
    static let readBlocks = 8

    let progress: ProgressCounter?
    let known: HashedBlocks?

    init(file: ImageFile, blockSize: Int, stripes: [Range<UInt64>], progress: ProgressCounter?, known: HashedBlocks?) {
        self.progress = progress
        self.known = known
        self.file = file
        self.blockSize = blockSize
        self.stripes = stripes
        self.results = Array(repeating: [], count: stripes.count)
    }

    private func claim() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil, next < stripes.count else { return nil }
        next += 1
        return next - 1
    }

    private var failed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return failure != nil
    }

    private func fail(_ error: Swift.Error) {
        lock.lock()
        if failure == nil { failure = error }
        lock.unlock()
    }

    func hashStripes() {
        let buffer = ScratchBuffer(count: blockSize * Self.readBlocks)
        let bs = UInt64(blockSize)
        while let s = claim() {
            let stripe = stripes[s]
            var found: [BlockDigest] = []
            var block = stripe.lowerBound
            var reused: UInt64 = 0
            do {
                while block < stripe.upperBound {
                    if let k = known?[block] {
                        if case .digest(let sum) = k { found.append(BlockDigest(index: block, sha256: sum)) }
                        reused += 1
                        block += 1
                        progress?.add(blockSize)
                        continue
                    }
                    // A read covers the next blocks not known already, up to readBlocks.
                    var n = 1
                    while n < Self.readBlocks, block + UInt64(n) < stripe.upperBound, known?[block + UInt64(n)] == nil { n += 1 }
                    try file.withBytes(at: block * bs, count: n * blockSize, scratch: buffer.bytes) { chunk in
                        for i in 0..<n {
                            let one = UnsafeRawBufferPointer(rebasing: chunk[(i * blockSize)..<((i + 1) * blockSize)])
                            if !Zeros.contains(one) {
                                found.append(BlockDigest(index: block + UInt64(i), sha256: .hashing(one)))
                            }
                        }
                    }
                    block += UInt64(n)
                    progress?.add(n * blockSize)
                }
            } catch {
                fail(error)
                return
            }
            lock.lock()
            results[s] = found
            knownUsed += reused
            lock.unlock()
        }
    }

    func hashWholeFile(dataRuns: [Range<UInt64>]) {
        let hasher = SHA256Hasher()
        let buffer = ScratchBuffer(count: blockSize * Self.readBlocks)
        let bs = UInt64(blockSize)
        let size = file.size
        var offset: UInt64 = 0
        func feedZeros(upTo end: UInt64) {
            while offset < end {
                let n = Int(min(UInt64(Zeros.count), end - offset))
                hasher.update(UnsafeRawBufferPointer(rebasing: Zeros.buffer[0..<n]))
                offset += UInt64(n)
            }
        }
        do {
            for run in dataRuns {
                feedZeros(upTo: min(size, run.lowerBound * bs))
                let end = min(size, run.upperBound * bs)
                while offset < end {
                    if failed { return }
                    let n = Int(min(UInt64(buffer.bytes.count), end - offset))
                    try file.withBytes(at: offset, count: n, scratch: buffer.bytes) { hasher.update($0) }
                    offset += UInt64(n)
                }
            }
            feedZeros(upTo: size)
        } catch {
            fail(error)
            return
        }
        let digest = hasher.finalize()
        lock.lock()
        fileDigest = digest
        lock.unlock()
    }
}

/// Runs `body(0..<count)` on `count` threads of their own and waits for all of them.
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for id in 0..<count {
        group.enter()
        let thread = Thread {
            body(id)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
}
