import Foundation
import KilnAWS
import KilnDigest
import KilnManifest

/// Checks a completed EBS snapshot against a manifest: ListSnapshotBlocks must name exactly the manifest's written
/// blocks (or every block, as an encrypted upload writes them), and with `download` every block is fetched with
/// GetSnapshotBlock and its checksum and bytes compared with the manifest and the image.
public struct SnapshotCheck: Sendable {
    public var snapshotID: String
    public var ebs: EBSClient
    public var manifest: SnapshotManifest
    public var manifestPath: String
    public var workers: Int

    public init(snapshotID: String, ebs: EBSClient, manifest: SnapshotManifest, manifestPath: String, workers: Int = 32) {
        self.snapshotID = snapshotID
        self.ebs = ebs
        self.manifest = manifest
        self.manifestPath = manifestPath
        self.workers = max(1, workers)
    }

    /// What the check found.
    public struct Report: Sendable, Codable, Hashable {
        public var snapshotId: String
        public var listedBlocks: Int
        public var expectedBlocks: Int
        /// True when the snapshot holds every block of the volume (an encrypted upload).
        public var allBlocks: Bool
        /// Written blocks the snapshot does not have.
        public var missing: [UInt64]
        /// Blocks the snapshot has that the manifest does not write.
        public var unexpected: [UInt64]
        public var downloaded: Int
        /// Blocks whose checksum or bytes differ, with what differs.
        public var mismatches: [Mismatch]
        public var ok: Bool { missing.isEmpty && unexpected.isEmpty && mismatches.isEmpty }
    }

    public struct Mismatch: Sendable, Codable, Hashable {
        public var index: UInt64
        public var problem: String
    }

    public func run(download: Bool) async throws -> Report {
        let sidecar = try BlockDigestFile.load(path: manifest.sidecarPath(manifestPath: manifestPath)).file
        let (listed, _) = try await ebs.listSnapshotBlocks(snapshotID: snapshotID)
        let listedSet = Set(listed.map(\.index))
        let written = Set(sidecar.entries.map(\.index))
        let all = UInt64(listedSet.count) == sidecar.blockCount && listedSet.allSatisfy { $0 < sidecar.blockCount } && sidecar.blockCount > UInt64(written.count)
        var expected = all ? listedSet : written
        let zero = BlockDigest.zeroBlockSHA256(size: EBSClient.blockSize)
        if let base = manifest.base {
            // Uploaded onto the base's snapshot: where the base had data and this volume has none, a zero block
            // was written, and the snapshot lists it.
            let path = URL(fileURLWithPath: manifestPath).deletingLastPathComponent().appendingPathComponent(base.changes.file).path
            let changes = try BlockDigestFile.load(path: path).file
            for c in changes.entries where c.sha256 == zero && listedSet.contains(c.index) { expected.insert(c.index) }
        }
        var report = Report(snapshotId: snapshotID, listedBlocks: listed.count, expectedBlocks: expected.count, allBlocks: all,
                            missing: written.subtracting(listedSet).sorted(), unexpected: listedSet.subtracting(expected).sorted(),
                            downloaded: 0, mismatches: [])
        guard download else { return report }
        var table: [UInt64: SHA256Sum] = [:]
        for e in sidecar.entries { table[e.index] = e.sha256 }
        let digests = table
        let reader = try BlockReader(path: manifest.imagePath(manifestPath: manifestPath))
        let queue = ListQueue(listed.filter { $0.index < sidecar.blockCount })
        let ebs = self.ebs
        let id = snapshotID
        let found = try await withThrowingTaskGroup(of: [Mismatch].self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var bad: [Mismatch] = []
                    while let block = queue.next() {
                        let (data, checksum) = try await ebs.getSnapshotBlock(snapshotID: id, index: block.index, token: block.token)
                        let want = digests[block.index] ?? zero
                        let got = data.withUnsafeBytes { SHA256Sum.hashing($0) }
                        if data.count != EBSClient.blockSize {
                            bad.append(Mismatch(index: block.index, problem: "\(data.count) bytes, not \(EBSClient.blockSize)"))
                        } else if got != want {
                            bad.append(Mismatch(index: block.index, problem: "sha256 \(got.hex), the manifest has \(want.hex)"))
                        } else if let checksum, checksum != want.base64 {
                            bad.append(Mismatch(index: block.index, problem: "x-amz-Checksum \(checksum), the manifest's is \(want.base64)"))
                        } else if try reader.read(block.index) != data {
                            bad.append(Mismatch(index: block.index, problem: "bytes differ from the image"))
                        }
                    }
                    return bad
                }
            }
            var out: [Mismatch] = []
            for try await part in group { out += part }
            return out.sorted { $0.index < $1.index }
        }
        report.downloaded = queue.count
        report.mismatches = found
        return report
    }
}

final class ListQueue: @unchecked Sendable {
    let items: [EBSClient.ListedBlock]
    var position = 0
    let lock = NSLock()

    init(_ items: [EBSClient.ListedBlock]) { self.items = items }

    var count: Int { items.count }

    func next() -> EBSClient.ListedBlock? {
        lock.lock()
        defer { lock.unlock() }
        guard position < items.count else { return nil }
        position += 1
        return items[position - 1]
    }
}
