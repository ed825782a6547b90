import Foundation
import KilnCore
import KilnDigest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// What the bake knows about a volume besides its bytes: everything ``ManifestWriter/writeSnapshot(image:outputDirectory:inputs:hasher:)``
/// needs to describe it.
public struct SnapshotInputs: Sendable, Hashable {
    /// kiln's version.
    public var kilnVersion: String
    public var recipe: SnapshotManifest.Recipe
    /// RFC 3339 UTC, from ``ManifestTimestamp/rfc3339(epochSeconds:)`` of `SOURCE_DATE_EPOCH`.
    public var createdAt: String
    public var images: [ManifestImage]
    /// `bottlerocket`, `containerd` or `rootfs`.
    public var layout: String
    public var partition: ManifestPartition?
    public var filesystem: ManifestFilesystem?
    /// Where files and metadata are in the image file.
    public var fileMap: FileMapInput
    public var fileMapPolicy: FileMapPolicy
    /// The filesystem's placement record (``KilnExt4``'s layout file), written as `manifest.layout`.
    public var placement: [UInt8]?
    /// The base the volume was baked against, to record what changed.
    public var base: BaseInput?

    public init(kilnVersion: String, recipe: SnapshotManifest.Recipe, createdAt: String, images: [ManifestImage],
                layout: String, partition: ManifestPartition? = nil, filesystem: ManifestFilesystem? = nil,
                fileMap: FileMapInput = FileMapInput(), fileMapPolicy: FileMapPolicy = FileMapPolicy()) {
        self.kilnVersion = kilnVersion
        self.recipe = recipe
        self.createdAt = createdAt
        self.images = images
        self.layout = layout
        self.partition = partition
        self.filesystem = filesystem
        self.fileMap = fileMap
        self.fileMapPolicy = fileMapPolicy
    }
}

/// Writes manifests and sidecars: deterministic bytes, atomic appearance.
public enum ManifestWriter {
    /// Errors raised while writing.
    public enum Error: Swift.Error, CustomStringConvertible {
        case io(String, String)
        case encoding(String)

        public var description: String {
            switch self {
            case .io(let path, let why): return "cannot write '\(path)': \(why)"
            case .encoding(let why): return "cannot encode the manifest: \(why)"
            }
        }
    }

    /// The manifest's bytes: JSON with sorted keys, two-space indentation, no escaped slashes, integers only,
    /// and a final newline. The same manifest always gives the same bytes.
    public static func encode(_ manifest: SnapshotManifest) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            var data = try encoder.encode(manifest)
            data.append(0x0a)
            return data
        } catch {
            throw Error.encoding("\(error)")
        }
    }

    /// Writes `manifest` atomically to `path`.
    public static func write(_ manifest: SnapshotManifest, to path: String) throws {
        try writeAtomically(try encode(manifest), to: path)
    }

    /// Writes `bytes` to a temporary file beside `path`, flushes it and renames it over `path`, so readers see
    /// the old file or the whole new one. The mode is 0644 whatever the umask.
    public static func writeAtomically(_ bytes: some ContiguousBytes, to path: String) throws {
        try stage(bytes, for: path).commit()
    }

    /// Writes `bytes` to a temporary file beside `path` and flushes it, without putting it in place yet: the
    /// slow part of ``writeAtomically(_:to:)``, so that the rename can follow another one at once.
    public static func stage(_ bytes: some ContiguousBytes, for path: String) throws -> StagedFile {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        let staged = StagedFile(temporary: temporary, path: path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Error.io(path, String(cString: strerror(errno))) }
        func fail(_ e: Int32) -> Error {
            close(fd)
            return Error.io(path, String(cString: strerror(e)))
        }
        guard fchmod(fd, 0o644) == 0 else { throw fail(errno) }
        let failure: Int32? = bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = systemWrite(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                done += n
            }
            return nil
        }
        if let e = failure { throw fail(e) }
        guard fsync(fd) == 0 else { throw fail(errno) }
        close(fd)
        return staged
    }

    /// The file name and format of the filesystem placement sidecar.
    public static let placementFileName = "manifest.layout"
    public static let placementFormat = "kiln-ext4-layout-v1"

    /// Hashes the image once, writes the sidecar and then the manifest into `outputDirectory` (each atomically,
    /// the manifest last, so a complete-looking output is complete) and returns the manifest.
    ///
    /// - Parameters:
    ///   - image: the finished image file (normally `outputDirectory/data.img`).
    ///   - imageFileName: the name the manifest records for the image, which is expected beside it (default:
    ///     the last component of `image`; give `data.img` when hashing a temporary file renamed afterwards).
    ///   - hasher: threads, block size, and whether to record the whole-file sha256 (`fileDigest`). That digest is
    ///     sequential, so on a large image it takes longer than every block on all cores.
    ///   - commit: run just before the manifest is written, where an interruption waits for both (e.g. renaming
    ///     the hashed image into place), so that the image and its manifest appear together.
    @discardableResult
    public static func writeSnapshot(image: String, imageFileName: String? = nil, outputDirectory: String,
                                     inputs: SnapshotInputs, hasher: BlockHasher = BlockHasher(),
                                     commit: (() throws -> Void)? = nil) throws -> SnapshotManifest {
        let hashes = try hasher.hash(path: image)
        let fileDigest = hashes.fileDigest
        let directory = URL(fileURLWithPath: outputDirectory)
        let sidecar = try BlockDigestFile(hashes).write(to: directory.appendingPathComponent(BlockDigestFile.defaultFileName).path)
        var placement: SnapshotManifest.BlockDigestsReference? = nil
        if let bytes = inputs.placement {
            let path = directory.appendingPathComponent(placementFileName).path
            try writeAtomically(bytes, to: path)
            let digest = bytes.withUnsafeBytes { Digest(sha256: SHA256Hasher.hashBytes($0)) }
            placement = .init(file: placementFileName, format: placementFormat, digest: digest, size: UInt64(bytes.count))
        }
        var base: ManifestBase? = nil
        if let b = inputs.base {
            let (changed, unchanged) = ManifestBase.changes(from: b.blocks, to: hashes.written, blockSize: hashes.blockSize)
            let file = BlockDigestFile(blockSize: hashes.blockSize, blockCount: hashes.blockCount, entries: changed)
            var reference = try file.write(to: directory.appendingPathComponent(ManifestBase.changesFileName).path)
            reference.format = ManifestBase.changesFormat
            base = ManifestBase(
                manifest: b.manifestDigest, recipe: b.manifest.recipe, createdAt: b.manifest.createdAt, checksum: b.manifest.blocks.checksum,
                snapshots: b.manifest.snapshots, changedBlocks: UInt64(changed.count),
                changedBytes: UInt64(changed.count) * UInt64(hashes.blockSize), unchangedBlocks: unchanged, keptInodes: b.keptInodes,
                changes: reference)
        }
        let manifest = SnapshotManifest(
            kiln: .init(version: inputs.kilnVersion), recipe: inputs.recipe, createdAt: inputs.createdAt,
            images: inputs.images,
            volume: ManifestVolume(
                file: imageFileName ?? URL(fileURLWithPath: image).lastPathComponent, size: hashes.fileSize, layout: inputs.layout,
                partition: inputs.partition, filesystem: inputs.filesystem, sha256: fileDigest),
            blocks: .init(hashes), blockDigests: sidecar,
            files: FileMap(inputs.fileMap, blockSize: hashes.blockSize, policy: inputs.fileMapPolicy),
            placement: placement, base: base)
        // The manifest is flushed before the image is moved into place, so that only two renames separate an
        // output with neither from one with both.
        let staged = try stage(try encode(manifest), for: directory.appendingPathComponent(SnapshotManifest.fileName).path)
        try Interruption.commit {
            try commit?()
            try staged.commit()
        }
        return manifest
    }
}

/// A flushed file beside its final name (``ManifestWriter/stage(_:for:)``): removed on SIGINT and SIGTERM, and
/// when dropped without ``commit()``.
public final class StagedFile: @unchecked Sendable {
    let temporary: String
    let path: String
    private var done = false

    init(temporary: String, path: String) {
        self.temporary = temporary
        self.path = path
        Interruption.protect(temporary)
    }

    /// Renames the file into place.
    public func commit() throws {
        guard !done else { return }
        done = true
        defer { Interruption.release(temporary) }
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw ManifestWriter.Error.io(path, String(cString: strerror(e)))
        }
    }

    deinit {
        guard !done else { return }
        unlink(temporary)
        Interruption.release(temporary)
    }
}
