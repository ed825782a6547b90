import Foundation
import KilnCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What is already known of one block of an image: its digest, or that it holds only zeros.
public enum HashedBlock: Sendable, Hashable {
    case zeros
    case digest(SHA256Sum)
}

/// Blocks of an image hashed before the image was complete, still valid when it was: ``BlockHasher`` reads
/// only the others.
public struct HashedBlocks: Sendable {
    /// The block size the digests are of.
    public var blockSize: Int
    private var blocks: [HashedBlock?]

    public init(blockSize: Int, blocks: [HashedBlock?] = []) {
        self.blockSize = blockSize
        self.blocks = blocks
    }

    /// What is known of block `index`, if anything.
    public subscript(index: UInt64) -> HashedBlock? {
        index < UInt64(blocks.count) ? blocks[Int(index)] : nil
    }

    /// How many blocks are known.
    public var count: Int { blocks.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }
}

/// Hashes an image's EBS blocks while the image is being written, so that its manifest needs no second pass over
/// the data.
///
/// The writer tells it of every change (``ImageWriteObserver``). A block whose bytes have all been written once
/// is probably final (kiln's ext4 writer allocates file data strictly forward and never reuses a block), so a
/// worker thread of its own hashes it then, from the page cache, while the writer goes on elsewhere. Nothing
/// depends on the guess being right: every change bumps the block's version, and a digest counts only if its
/// block's version did not move from the moment the worker began reading it. Blocks rewritten later (metadata
/// at close, the partition table) or never completely written (holes, the last block) are hashed by the final
/// pass, which reads nothing else.
///
/// Memory: about 56 bytes per EBS block of the image (a 200 GB volume: 22 MB).
public final class LiveBlockHasher: ImageWriteObserver, @unchecked Sendable {
    public let path: String
    public let blockSize: Int

    private struct Slot {
        /// Bumped by every change to the block.
        var version: UInt32 = 0
        /// Bytes written into the block so far, counted once per write (saturating at the block size).
        var covered: UInt32 = 0
        /// The version the digest was taken at, or nil.
        var hashedVersion: UInt32? = nil
        var digest: HashedBlock? = nil
    }

    private let lock = NSLock()
    // Guarded by `lock`.
    private var slots: [Slot] = []
    private var queue: [(block: UInt64, version: UInt32)] = []
    private var queueHead = 0
    private var stopping = false
    private var paused = false
    private var running = false
    private var hashed = 0

    private let wake = DispatchSemaphore(value: 0)
    private let exited = DispatchSemaphore(value: 0)
    /// Called on the worker thread with the byte range of each block it has just hashed: final data, worth
    /// starting writeback for.
    private let blockFinished: (@Sendable (Range<UInt64>) -> Void)?

    public init(path: String, blockSize: Int = BlockHasher.ebsBlockSize, blockFinished: (@Sendable (Range<UInt64>) -> Void)? = nil) {
        self.path = path
        self.blockSize = blockSize
        self.blockFinished = blockFinished
    }

    deinit { _ = stop() }

    /// Starts the worker thread (the file must exist; it is opened read-only).
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard !running, !stopping else { return }
        running = true
        let thread = Thread { [self] in work() }
        thread.stackSize = 1 << 20
        thread.start()
    }

    public func imageDidChange(offset: UInt64, count: UInt64) {
        guard count > 0 else { return }
        let bs = UInt64(blockSize)
        let first = offset / bs
        let last = (offset + count - 1) / bs
        var queued = false
        lock.lock()
        if slots.count <= Int(last) {
            slots.reserveCapacity(max(Int(last) + 1, slots.count * 2))
            slots.append(contentsOf: repeatElement(Slot(), count: Int(last) + 1 - slots.count))
        }
        for b in first...last {
            let start = max(offset, b * bs)
            let end = min(offset + count, (b + 1) * bs)
            var slot = slots[Int(b)]
            slot.version &+= 1
            slot.covered = UInt32(min(bs, UInt64(slot.covered) + (end - start)))
            if slot.covered == UInt32(bs), running, !stopping {
                queue.append((b, slot.version))
                queued = true
            }
            slots[Int(b)] = slot
        }
        lock.unlock()
        if queued { wake.signal() }
    }

    /// Blocks the write covers whole are hashed here, from the bytes written, on the writer's thread: the file
    /// holds exactly these bytes there, so nothing needs to be read back. The blocks at its edges, written only in
    /// part, are followed as any other change.
    public func imageDidWrite(offset: UInt64, bytes: UnsafeRawBufferPointer) {
        let bs = UInt64(blockSize)
        let end = offset + UInt64(bytes.count)
        let firstWhole = (offset + bs - 1) / bs
        let endWhole = end / bs
        guard firstWhole < endWhole, let base = bytes.baseAddress else {
            imageDidChange(offset: offset, count: UInt64(bytes.count))
            return
        }
        if offset < firstWhole * bs { imageDidChange(offset: offset, count: firstWhole * bs - offset) }
        if endWhole * bs < end { imageDidChange(offset: endWhole * bs, count: end - endWhole * bs) }
        var digests: [HashedBlock] = []
        digests.reserveCapacity(Int(endWhole - firstWhole))
        for b in firstWhole..<endWhole {
            let block = UnsafeRawBufferPointer(start: base + Int(b * bs - offset), count: blockSize)
            digests.append(Zeros.contains(block) ? .zeros : .digest(.hashing(block)))
        }
        lock.lock()
        if slots.count < Int(endWhole) {
            slots.reserveCapacity(max(Int(endWhole), slots.count * 2))
            slots.append(contentsOf: repeatElement(Slot(), count: Int(endWhole) - slots.count))
        }
        // Changes after stop() are not followed: the blocks are only marked changed, as imageDidChange does.
        let following = running && !stopping
        for (k, b) in (firstWhole..<endWhole).enumerated() {
            var slot = slots[Int(b)]
            slot.version &+= 1
            slot.covered = UInt32(bs)
            if following {
                slot.hashedVersion = slot.version
                slot.digest = digests[k]
                hashed += 1
            }
            slots[Int(b)] = slot
        }
        lock.unlock()
        if following, let blockFinished { blockFinished((firstWhole * bs)..<(endWhole * bs)) }
    }

    /// Stops the worker (after the block in its hands) and returns every digest still valid. Call it once the
    /// image is complete; changes after it are not followed.
    @discardableResult
    public func stop() -> HashedBlocks {
        lock.lock()
        let wasRunning = running && !stopping
        stopping = true
        lock.unlock()
        if wasRunning {
            wake.signal()
            exited.wait()
        }
        return lock.withLock {
            HashedBlocks(blockSize: blockSize, blocks: slots.map { $0.hashedVersion == $0.version ? $0.digest : nil })
        }
    }

    /// Holds the worker after the block in its hands (changes are still followed): tests use it to change blocks
    /// after they were hashed, before anything hashes them again.
    func pause() { lock.withLock { paused = true } }

    /// Blocks queued for the worker and not yet taken: tests wait for it to reach 0.
    var queuedBlocks: Int { lock.withLock { queue.count - queueHead } }

    /// Blocks hashed while the image was written, by the worker or from the bytes of a write (valid or not by
    /// the end).
    public var blocksHashed: Int { lock.withLock { hashed } }

    private func next() -> (block: UInt64, version: UInt32)? {
        lock.withLock {
            while !stopping, !paused, queueHead < queue.count {
                let item = queue[queueHead]
                queueHead += 1
                if queueHead == queue.count {
                    queue.removeAll(keepingCapacity: true)
                    queueHead = 0
                }
                // A later change queued the block again (or will be hashed at the end): skip this one.
                if slots[Int(item.block)].version == item.version { return item }
            }
            return nil
        }
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func work() {
        defer { exited.signal() }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }  // nothing hashed early: the final pass hashes everything
        defer { close(fd) }
        let scratch = ScratchBuffer(count: blockSize)
        let bs = UInt64(blockSize)
        while true {
            wake.wait()
            while let (block, version) = next() {
                guard let result = hash(fd: fd, at: block * bs, scratch: scratch.bytes) else { continue }
                lock.lock()
                if slots[Int(block)].version == version {
                    slots[Int(block)].hashedVersion = version
                    slots[Int(block)].digest = result
                    hashed += 1
                }
                lock.unlock()
                blockFinished?((block * bs)..<((block + 1) * bs))
            }
            if isStopping { return }
        }
    }

    /// The block at `offset`, read into `scratch` (zeros past the end of the file). Mapping it instead saves the
    /// copy, but every unmapping interrupts the cores running the bake's other threads to flush their address
    /// translations, and it measured no faster.
    private func hash(fd: Int32, at offset: UInt64, scratch: UnsafeMutableRawBufferPointer) -> HashedBlock? {
        guard let base = scratch.baseAddress else { return nil }
        let result = PositionalIO.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<blockSize]), at: offset)
        guard result.errno == nil else { return nil }
        if result.count < blockSize { memset(base + result.count, 0, blockSize - result.count) }
        let bytes = UnsafeRawBufferPointer(scratch)
        return Zeros.contains(bytes) ? .zeros : .digest(.hashing(bytes))
    }
}
