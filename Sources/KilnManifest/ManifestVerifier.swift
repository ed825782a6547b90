import Foundation
import KilnCore
import KilnDigest

/// Verifies image files against manifests, and manifests against their sidecars.
///
/// Image verification reads every block that holds data, in parallel (``BlockHasher``), compares it with the
/// sidecar's digests, checks which blocks are written, the LINEAR aggregate, the file size and optionally the
/// whole file's sha256, and reports bad blocks as ranges with the files, layers and metadata they belong to.
public struct ManifestVerifier: Sendable {
    /// Threads reading and hashing blocks.
    public var threads: Int
    /// Whether to recompute the sha256 of the whole file. It is sequential, so it bounds verification to one
    /// core's hashing speed; when every block matches and the size matches, the file's bytes are the ones the
    /// manifest's digest was computed from, so it adds nothing but a check of the manifest itself.
    public var fileDigest: Bool
    /// Counts the image's bytes as they are read and hashed.
    public var progress: ProgressCounter?

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, fileDigest: Bool = false, progress: ProgressCounter? = nil) {
        self.threads = threads
        self.fileDigest = fileDigest
        self.progress = progress
    }

    /// Verifies `image` against the manifest at `manifestPath` and its sidecar.
    ///
    /// Throws ``SnapshotManifest/Error`` or ``BlockDigestFile/Error`` when they cannot be read or parsed, and
    /// ``BlockHasher/Error`` when the image cannot be read; differences are reported, not thrown.
    public func verify(image: String, manifestPath: String) throws -> VolumeVerification {
        let manifest = try SnapshotManifest.load(path: manifestPath)
        let sidecar = try BlockDigestFile.load(path: manifest.sidecarPath(manifestPath: manifestPath))
        return try verify(image: image, manifest: manifest, sidecar: sidecar, manifestName: manifestPath)
    }

    /// Verifies `image` against a loaded manifest and sidecar.
    public func verify(image: String, manifest: SnapshotManifest, sidecar: BlockDigestFile.Loaded,
                       manifestName: String = SnapshotManifest.fileName) throws -> VolumeVerification {
        // A sidecar of another shape cannot be compared block by block: every block would be "bad" (or, from
        // a hostile one, blocks far past the image). That is the wrong sidecar, an input error, not damage.
        let b = manifest.blocks
        let f = sidecar.file
        let name = manifest.blockDigests.file
        if f.blockSize != b.size {
            throw BlockDigestFile.Error.doesNotFitManifest(name, "its block size is \(f.blockSize); the manifest's blocks.size is \(b.size)")
        }
        let expectedCount = manifest.volume.size / UInt64(b.size) + (manifest.volume.size % UInt64(b.size) == 0 ? 0 : 1)
        if f.blockCount != b.count || b.count != expectedCount {
            throw BlockDigestFile.Error.doesNotFitManifest(
                name, "it counts \(f.blockCount) blocks and the manifest \(b.count); a \(manifest.volume.size)-byte volume has \(expectedCount)")
        }
        var problems = Self.consistencyProblems(manifest: manifest, sidecar: sidecar)
        var hasher = BlockHasher(blockSize: manifest.blocks.size, threads: threads, fileDigest: fileDigest)
        hasher.progress = progress
        let hashes = try hasher.hash(path: image)

        if hashes.fileSize != manifest.volume.size {
            problems.append("image is \(hashes.fileSize) bytes; the manifest says \(manifest.volume.size)")
        }
        if hashes.writtenCount != manifest.blocks.written {
            problems.append("image has \(hashes.writtenCount) written blocks; the manifest says \(manifest.blocks.written)")
        }
        if hashes.linearChecksum != manifest.blocks.checksum {
            problems.append("LINEAR checksum is \(hashes.linearChecksum); the manifest says \(manifest.blocks.checksum)")
        }
        var fileCheck = VolumeVerification.FileDigestCheck.notChecked
        if let actual = hashes.fileDigest {
            if let expected = manifest.volume.sha256 {
                fileCheck = actual == expected ? .matched : .mismatched
                if fileCheck == .mismatched { problems.append("image sha256 is \(actual); the manifest says \(expected)") }
            } else {
                fileCheck = .notRecorded
            }
        }

        let index = FileMapIndex(manifest.files)
        let ranges = Self.badRanges(expected: sidecar.file.entries, actual: hashes.written).map { r in
            VolumeVerification.BadRange(firstBlock: r.blocks.lowerBound, blockCount: UInt64(r.blocks.count),
                                        blockSize: manifest.blocks.size, problem: r.problem, owners: index.owners(of: r.blocks))
        }
        return VolumeVerification(
            ok: problems.isEmpty && ranges.isEmpty, image: image, manifest: manifestName,
            expectedSize: manifest.volume.size, actualSize: hashes.fileSize, blockSize: manifest.blocks.size,
            blockCount: hashes.blockCount, blocksRead: hashes.blocksRead, expectedWritten: manifest.blocks.written,
            actualWritten: hashes.writtenCount, expectedChecksum: manifest.blocks.checksum,
            actualChecksum: hashes.linearChecksum, fileDigest: fileCheck, expectedFileDigest: manifest.volume.sha256,
            actualFileDigest: hashes.fileDigest, badRanges: ranges, mappedFiles: manifest.files.totalFiles,
            problems: problems)
    }

    /// Merges two ascending lists of written blocks into ascending ranges of differing blocks.
    static func badRanges(expected: [BlockDigest], actual: [BlockDigest])
        -> [(blocks: Range<UInt64>, problem: VolumeVerification.BlockProblem)]
    {
        var out: [(blocks: Range<UInt64>, problem: VolumeVerification.BlockProblem)] = []
        func add(_ block: UInt64, _ problem: VolumeVerification.BlockProblem) {
            if let last = out.last, last.problem == problem, last.blocks.upperBound == block {
                out[out.count - 1].blocks = last.blocks.lowerBound..<(block + 1)
            } else {
                out.append((block..<(block + 1), problem))
            }
        }
        var e = 0
        var a = 0
        while e < expected.count || a < actual.count {
            if a == actual.count || (e < expected.count && expected[e].index < actual[a].index) {
                add(expected[e].index, .missingData)
                e += 1
            } else if e == expected.count || actual[a].index < expected[e].index {
                add(actual[a].index, .unexpectedData)
                a += 1
            } else {
                if expected[e].sha256 != actual[a].sha256 { add(actual[a].index, .digestMismatch) }
                e += 1
                a += 1
            }
        }
        return out
    }

    /// Checks the manifest at `manifestPath` against its sidecar.
    ///
    /// Throws when either cannot be read or parsed; inconsistencies are reported.
    public static func checkManifest(path manifestPath: String) throws -> ManifestConsistency {
        let manifest = try SnapshotManifest.load(path: manifestPath)
        let sidecarPath = manifest.sidecarPath(manifestPath: manifestPath)
        let sidecar = try BlockDigestFile.load(path: sidecarPath)
        return ManifestConsistency(
            manifest: manifestPath, sidecar: sidecarPath, entries: UInt64(sidecar.file.entries.count),
            checksum: sidecar.file.linearChecksum, problems: consistencyProblems(manifest: manifest, sidecar: sidecar))
    }

    /// What is inconsistent between a manifest and its sidecar: the sidecar's digest and size, block size and
    /// count, written blocks and bytes, the LINEAR checksum recomputed from the entries, and the manifest's
    /// own arithmetic.
    public static func consistencyProblems(manifest: SnapshotManifest, sidecar: BlockDigestFile.Loaded) -> [String] {
        var problems: [String] = []
        let b = manifest.blocks
        let s = sidecar.file
        let name = manifest.blockDigests.file
        if sidecar.digest != manifest.blockDigests.digest {
            problems.append("sidecar '\(name)' has sha256 \(sidecar.digest); the manifest says \(manifest.blockDigests.digest)")
        }
        if sidecar.size != manifest.blockDigests.size {
            problems.append("sidecar '\(name)' is \(sidecar.size) bytes; the manifest says \(manifest.blockDigests.size)")
        }
        if manifest.blockDigests.format != BlockDigestFile.formatName {
            problems.append("blockDigests.format is '\(manifest.blockDigests.format)'; expected '\(BlockDigestFile.formatName)'")
        }
        if b.checksumAlgorithm != "SHA256" { problems.append("blocks.checksumAlgorithm is '\(b.checksumAlgorithm)'; expected 'SHA256'") }
        if b.aggregationMethod != "LINEAR" { problems.append("blocks.aggregationMethod is '\(b.aggregationMethod)'; expected 'LINEAR'") }
        if s.blockSize != b.size { problems.append("sidecar block size is \(s.blockSize); the manifest says \(b.size)") }
        if s.blockCount != b.count { problems.append("sidecar block count is \(s.blockCount); the manifest says \(b.count)") }
        if b.size > 0 {
            let bs = UInt64(b.size)
            let expectedCount = manifest.volume.size / bs + (manifest.volume.size % bs == 0 ? 0 : 1)
            if b.count != expectedCount {
                problems.append("blocks.count is \(b.count); a \(manifest.volume.size)-byte volume has \(expectedCount)")
            }
        }
        if UInt64(s.entries.count) != b.written {
            problems.append("sidecar lists \(s.entries.count) written blocks; the manifest says \(b.written)")
        }
        let (bytes, overflow) = b.written.multipliedReportingOverflow(by: UInt64(max(0, b.size)))
        if overflow || bytes != b.writtenBytes {
            problems.append("blocks.writtenBytes is \(b.writtenBytes); written x size is \(overflow ? "too large" : String(bytes))")
        }
        let linear = s.linearChecksum
        if linear != b.checksum {
            problems.append("LINEAR checksum of the sidecar's digests is \(linear); the manifest says \(b.checksum)")
        }
        let mapEnd = manifest.files.upperBound
        if mapEnd > b.count {
            problems.append("the file map names block \(mapEnd - 1), past the volume's \(b.count) blocks")
        }
        return problems
    }
}
