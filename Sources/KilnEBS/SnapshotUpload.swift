import Foundation
import KilnAWS
import KilnCore
import KilnDigest
import KilnManifest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an upload sends: the blocks, their checksums and the LINEAR aggregate, from a manifest and its sidecar.
public struct UploadPlan: Sendable {
    /// Blocks to send in ascending index, with the sha256 each must have.
    public var blocks: [BlockDigest]
    /// The LINEAR checksum CompleteSnapshot gets.
    public var checksum: String
    public var volumeSizeGiB: Int
    public var imagePath: String
    public var imageSize: UInt64
    public var blockCount: UInt64
    public var encrypted: Bool
    /// Whether only the blocks that differ from the manifest's base are sent (an upload onto the base's snapshot).
    public var changesOnly: Bool

    /// Errors in the upload's inputs.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case sidecarMismatch(String, String)
        case checksumMismatch(String, String, String)
        case blockSize(String, Int)
        case imageMissing(String)
        case imageSize(String, UInt64, UInt64)
        case noBase(String)
        case changesMismatch(String, String)

        public var description: String {
            switch self {
            case .noBase(let p): return "manifest '\(p)' was not baked with --base: there is no list of changed blocks to send onto a parent snapshot (bake with --base PREV, PREV being the bake the parent snapshot holds, or upload without a parent)"
            case .changesMismatch(let p, let why): return "changed-block file '\(p)' does not match its manifest: \(why)"
            case .sidecarMismatch(let p, let why): return "block digest file '\(p)' does not match its manifest: \(why)"
            case .checksumMismatch(let p, let m, let s): return "manifest '\(p)' records LINEAR \(m) but its block digests give \(s)"
            case .blockSize(let p, let s): return "manifest '\(p)' has block size \(s); EBS snapshots use 524288"
            case .imageMissing(let p): return "image '\(p)' does not exist"
            case .imageSize(let p, let actual, let expected): return "image '\(p)' is \(actual) bytes; the manifest says \(expected)"
            }
        }
    }

    /// The plan for the manifest at `manifestPath`. Encrypted uploads send every block (zero blocks too), since an
    /// encrypted snapshot reads garbage where nothing was written.
    ///
    /// With `changesOnly`, the plan holds only the blocks that differ from the manifest's base (``ManifestBase``),
    /// zero blocks included where the base had data, and the checksum is theirs: what a snapshot started with
    /// the base's snapshot as its parent needs.
    public init(manifestPath: String, manifest: SnapshotManifest, encrypted: Bool, changesOnly: Bool = false) throws {
        guard manifest.blocks.size == EBSClient.blockSize else { throw Error.blockSize(manifestPath, manifest.blocks.size) }
        let sidecarPath = manifest.sidecarPath(manifestPath: manifestPath)
        let loaded = try BlockDigestFile.load(path: sidecarPath)
        guard loaded.digest == manifest.blockDigests.digest else {
            throw Error.sidecarMismatch(sidecarPath, "its sha256 is \(loaded.digest), the manifest records \(manifest.blockDigests.digest)")
        }
        let file = loaded.file
        guard file.blockCount == manifest.blocks.count, UInt64(file.entries.count) == manifest.blocks.written else {
            throw Error.sidecarMismatch(sidecarPath, "\(file.entries.count) of \(file.blockCount) blocks, the manifest says \(manifest.blocks.written) of \(manifest.blocks.count)")
        }
        let linear = file.linearChecksum
        guard linear == manifest.blocks.checksum else { throw Error.checksumMismatch(manifestPath, manifest.blocks.checksum, linear) }
        imagePath = manifest.imagePath(manifestPath: manifestPath)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: imagePath), let size = attributes[.size] as? NSNumber else {
            throw Error.imageMissing(imagePath)
        }
        imageSize = size.uint64Value
        guard imageSize == manifest.volume.size else { throw Error.imageSize(imagePath, imageSize, manifest.volume.size) }
        // The counts are the sidecar's word; the image's real size bounds what is sent (and allocated).
        let bs = UInt64(EBSClient.blockSize)
        let imageBlocks = imageSize / bs + (imageSize % bs == 0 ? 0 : 1)
        guard file.blockCount == imageBlocks else {
            throw Error.sidecarMismatch(sidecarPath, "it counts \(file.blockCount) blocks; the \(imageSize)-byte image has \(imageBlocks) of 512 KiB")
        }
        blockCount = file.blockCount
        self.encrypted = encrypted
        self.changesOnly = changesOnly
        volumeSizeGiB = max(1, Int((manifest.volume.size + (1 << 30) - 1) >> 30))
        if changesOnly {
            guard let base = manifest.base else { throw Error.noBase(manifestPath) }
            let changesPath = URL(fileURLWithPath: manifestPath).deletingLastPathComponent().appendingPathComponent(base.changes.file).path
            let changes = try BlockDigestFile.load(path: changesPath)
            guard changes.digest == base.changes.digest else {
                throw Error.changesMismatch(changesPath, "its sha256 is \(changes.digest), the manifest records \(base.changes.digest)")
            }
            guard UInt64(changes.file.entries.count) == base.changedBlocks, changes.file.blockCount == file.blockCount else {
                throw Error.changesMismatch(changesPath, "\(changes.file.entries.count) blocks, the manifest says \(base.changedBlocks)")
            }
            blocks = changes.file.entries
            checksum = LinearChecksum.compute(blocks)
        } else if encrypted {
            let zero = BlockDigest.zeroBlockSHA256(size: EBSClient.blockSize)
            var all: [BlockDigest] = []
            all.reserveCapacity(Int(clamping: file.blockCount))
            var written = file.entries.makeIterator()
            var next = written.next()
            for i in 0..<file.blockCount {
                if let n = next, n.index == i {
                    all.append(n)
                    next = written.next()
                } else {
                    all.append(BlockDigest(index: i, sha256: zero))
                }
            }
            blocks = all
            checksum = LinearChecksum.compute(all)
        } else {
            blocks = file.entries
            checksum = linear
        }
    }

    /// A ClientToken from what the upload is (the image's checksums, the region and the start parameters) and the
    /// journal's generation: a retried start returns the same snapshot.
    public func clientToken(region: String, start: EBSClient.StartRequest, generation: Int) -> String {
        var text = "kiln-upload-v1\n\(checksum)\n\(blocks.count)\n\(volumeSizeGiB)\n\(region)\n\(encrypted)\n\(start.kmsKeyARN ?? "")\n"
        if let parent = start.parentSnapshotID { text += "parent \(parent)\n" }
        text += "\(start.description ?? "")\n\(start.tags.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1f}"))\n\(generation)"
        return Array(text.utf8).withUnsafeBytes { SHA256Hasher.hashBytes($0) }.map { String(format: "%02x", $0) }.joined()
    }
}

/// Reads blocks of an image file: `pread`, zero-padded to the block size.
final class BlockReader: @unchecked Sendable {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotUploader.Error.imageUnreadable(path, String(cString: strerror(errno))) }
    }

    deinit { close(fd) }

    func read(_ index: UInt64) throws -> [UInt8] {
        let size = EBSClient.blockSize
        var buffer = [UInt8](repeating: 0, count: size)
        // A short last block stays zero-filled past the end of the file.
        let result = buffer.withUnsafeMutableBytes { PositionalIO.read(fd, into: $0, at: index * UInt64(size)) }
        if let e = result.errno { throw SnapshotUploader.Error.imageUnreadable(path, String(cString: strerror(e))) }
        return buffer
    }
}

/// Progress of an upload, for bars and log lines.
public struct UploadProgress: Sendable {
    public var sent: Int
    public var total: Int
    public var alreadyAcknowledged: Int
    public var retries: Int
}

/// Uploads the plan's blocks to a new (or the journal's pending) EBS snapshot: StartSnapshot, PutSnapshotBlock
/// with `workers` in flight (one block buffer each, so memory stays at workers x 512 KiB), CompleteSnapshot.
public struct SnapshotUploader: Sendable {
    public var plan: UploadPlan
    public var ebs: EBSClient
    public var region: String
    public var journalPath: String
    public var workers: Int
    public var start: EBSClient.StartRequest

    public init(plan: UploadPlan, ebs: EBSClient, region: String, journalPath: String, workers: Int, start: EBSClient.StartRequest) {
        self.plan = plan
        self.ebs = ebs
        self.region = region
        self.journalPath = journalPath
        self.workers = max(1, workers)
        self.start = start
    }

    /// Errors of the upload itself.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case imageUnreadable(String, String)
        case blockChanged(String, UInt64)

        public var description: String {
            switch self {
            case .imageUnreadable(let p, let why): return "cannot read image '\(p)': \(why)"
            case .blockChanged(let p, let i): return "block \(i) of '\(p)' does not match the manifest's digest: the image changed after the bake (run `kiln verify`)"
            }
        }
    }

    /// What an upload did.
    public struct Result: Sendable, Codable, Hashable {
        public var region: String
        public var snapshotId: String
        /// True when it continued a journal's snapshot.
        public var resumed: Bool
        /// PutSnapshotBlock calls that succeeded in this run.
        public var blocksSent: Int
        /// Blocks acknowledged in an earlier run.
        public var blocksAlreadyAcknowledged: Int
        public var changedBlocks: UInt64
        public var checksum: String
        public var volumeSizeGiB: Int
        public var seconds: Double
        public var statistics: AWSCallStatistics.Snapshot
    }

    /// Runs the upload to the point CompleteSnapshot was accepted, journaling each acknowledged block.
    ///
    /// `onSnapshot` is told the snapshot id (and whether it is a resumed one) as soon as it is known, so that a
    /// killed upload has already named it.
    public func run(progress: (@Sendable (UploadProgress) -> Void)? = nil, warn: (@Sendable (String) -> Void)? = nil,
                    onSnapshot: (@Sendable (String, Bool) -> Void)? = nil) async throws -> Result {
        let started = Date()
        var generation = 0
        var resumedJournal: UploadJournal?
        if let journal = try UploadJournal.load(path: journalPath) {
            let h = journal.header
            if h.region == region && h.checksum == plan.checksum && h.changedBlocks == UInt64(plan.blocks.count)
                && h.volumeSizeGiB == plan.volumeSizeGiB && h.encrypted == plan.encrypted
                && h.clientToken == plan.clientToken(region: region, start: start, generation: h.generation) {
                resumedJournal = journal
            } else {
                warn?("the upload journal '\(journalPath)' is for another upload (snapshot \(h.snapshotId) in \(h.region)); starting a new snapshot")
                generation = h.generation + 1
            }
        }
        if let journal = resumedJournal {
            onSnapshot?(journal.header.snapshotId, true)
            do {
                return try await upload(header: journal.header, acknowledged: journal.acknowledged, completed: journal.completed, resumed: true,
                                        started: started, progress: progress)
            } catch let e as AWSError where e.kind == .fatal && e.code != nil && !(e.code ?? "").hasPrefix("AccessDenied") && e.operation != "CompleteSnapshot" {
                warn?("snapshot \(journal.header.snapshotId) cannot be continued (\(e)); starting a new snapshot")
                generation = journal.header.generation + 1
            }
        }
        var request = start
        request.volumeSizeGiB = plan.volumeSizeGiB
        request.encrypted = plan.encrypted || start.encrypted
        request.clientToken = plan.clientToken(region: region, start: start, generation: generation)
        let snapshot = try await ebs.startSnapshot(request)
        let header = UploadJournal.Header(region: region, snapshotId: snapshot.snapshotID, clientToken: request.clientToken, checksum: plan.checksum,
                                          changedBlocks: UInt64(plan.blocks.count), volumeSizeGiB: plan.volumeSizeGiB, encrypted: plan.encrypted,
                                          generation: generation)
        _ = try UploadJournalWriter(path: journalPath, header: header)
        onSnapshot?(snapshot.snapshotID, false)
        return try await upload(header: header, acknowledged: [], completed: false, resumed: false, started: started, progress: progress)
    }

    func upload(header: UploadJournal.Header, acknowledged: Set<UInt64>, completed: Bool, resumed: Bool, started: Date,
                progress: (@Sendable (UploadProgress) -> Void)?) async throws -> Result {
        let journal = try UploadJournalWriter(path: journalPath, header: nil)
        let pending = completed ? [] : plan.blocks.filter { !acknowledged.contains($0.index) }
        let reader = try BlockReader(path: plan.imagePath)
        let queue = WorkQueue(pending)
        let total = plan.blocks.count
        let already = total - pending.count
        let id = header.snapshotId
        let ebs = self.ebs
        let imagePath = plan.imagePath
        let stats = ebs.client.statistics
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(workers, max(1, pending.count)) {
                group.addTask {
                    while let block = queue.next() {
                        try Task.checkCancellation()
                        let data = try reader.read(block.index)
                        let digest = data.withUnsafeBytes { SHA256Sum.hashing($0) }
                        guard digest == block.sha256 else { throw Error.blockChanged(imagePath, block.index) }
                        let done = queue.finishedCount
                        try await ebs.putSnapshotBlock(snapshotID: id, index: block.index, data: data, checksum: digest.base64,
                                                       progress: total > 0 ? (already + done) * 100 / total : 100)
                        try journal.acknowledge(block.index)
                        let sent = queue.finish()
                        progress?(UploadProgress(sent: sent, total: total, alreadyAcknowledged: already, retries: stats.snapshot.retries))
                    }
                }
            }
            try await group.waitForAll()
        }
        journal.sync()
        if !completed {
            _ = try await ebs.completeSnapshot(snapshotID: id, changedBlocks: UInt64(total), checksum: plan.checksum)
            try journal.markCompleted()
        }
        return Result(region: region, snapshotId: id, resumed: resumed, blocksSent: pending.count, blocksAlreadyAcknowledged: already,
                      changedBlocks: UInt64(total), checksum: plan.checksum, volumeSizeGiB: plan.volumeSizeGiB,
                      seconds: Date().timeIntervalSince(started), statistics: stats.snapshot)
    }
}

/// Hands out blocks to workers in order and counts the finished ones.
final class WorkQueue: @unchecked Sendable {
    let items: [BlockDigest]
    var position = 0
    var finished = 0
    let lock = NSLock()

    init(_ items: [BlockDigest]) { self.items = items }

    func next() -> BlockDigest? {
        lock.lock()
        defer { lock.unlock() }
        guard position < items.count else { return nil }
        position += 1
        return items[position - 1]
    }

    func finish() -> Int {
        lock.lock()
        defer { lock.unlock() }
        finished += 1
        return finished
    }

    var finishedCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return finished
    }
}
