import Foundation
import KilnDigest

/// The snapshot manifest (`manifest.json`): what a baked volume holds, down to every 512 KiB EBS block.
///
/// It is the contract between the bake, the upload, the planner and whoever audits a node later. Every field is
/// derived from the inputs and `SOURCE_DATE_EPOCH`, never from the clock, the machine or the working directory,
/// so the same inputs give byte-identical manifests (see ``ManifestWriter/encode(_:)``).
///
/// The per-block digests live in a binary sidecar (``BlockDigestFile``) whose sha256 the manifest records in
/// ``blockDigests``, so a manifest for a 200 GB volume stays small.
public struct SnapshotManifest: Sendable, Hashable, Codable {
    /// The schema version this library writes.
    public static let currentSchemaVersion = 1
    /// The file name of the manifest inside a bake's output directory.
    public static let fileName = "manifest.json"

    /// Version of the manifest's schema (`docs/manifest.schema.json`).
    public var schemaVersion: Int
    /// The tool that wrote the manifest.
    public var kiln: Tool
    /// The recipe that was baked.
    public var recipe: Recipe
    /// When the bake happened, RFC 3339 UTC with second precision (from `SOURCE_DATE_EPOCH`).
    public var createdAt: String
    /// The images baked into the volume, in recipe order.
    public var images: [ManifestImage]
    /// The image file and what it contains.
    public var volume: ManifestVolume
    /// Block statistics and the EBS aggregate checksum.
    public var blocks: BlockSummary
    /// The sidecar holding the digest of every written block.
    public var blockDigests: BlockDigestsReference
    /// Which files, layers and metadata regions own which blocks.
    public var files: FileMap
    /// The sidecar recording where the filesystem put every inode, group and journal block
    /// (`manifest.layout`, format `kiln-ext4-layout-v1`): what a later bake with `--base` keeps.
    public var placement: BlockDigestsReference?
    /// The previous bake this one was baked against, and what changed (`kiln bake --base`).
    public var base: ManifestBase?
    /// The EBS snapshot the volume was uploaded to, once it has been (the upload's own region).
    public var snapshotId: String?
    /// The EBS snapshot of the volume in each region it was uploaded or copied to: region -> snapshot id.
    public var snapshots: [String: String]?

    public init(
        schemaVersion: Int = SnapshotManifest.currentSchemaVersion, kiln: Tool, recipe: Recipe, createdAt: String,
        images: [ManifestImage], volume: ManifestVolume, blocks: BlockSummary, blockDigests: BlockDigestsReference,
        files: FileMap, placement: BlockDigestsReference? = nil, base: ManifestBase? = nil, snapshotId: String? = nil,
        snapshots: [String: String]? = nil
    ) {
        self.placement = placement
        self.base = base
        self.schemaVersion = schemaVersion
        self.kiln = kiln
        self.recipe = recipe
        self.createdAt = createdAt
        self.images = images
        self.volume = volume
        self.blocks = blocks
        self.blockDigests = blockDigests
        self.files = files
        self.snapshotId = snapshotId
        self.snapshots = snapshots
    }

    /// The tool that wrote a manifest.
    public struct Tool: Sendable, Hashable, Codable {
        /// kiln's version, e.g. `0.1.0`.
        public var version: String

        public init(version: String) { self.version = version }
    }

    /// The recipe a volume was baked from.
    public struct Recipe: Sendable, Hashable, Codable {
        public var name: String
        /// sha256 of the recipe file's bytes; nil when the bake was given sources on the command line instead.
        public var digest: Digest?

        public init(name: String, digest: Digest?) {
            self.name = name
            self.digest = digest
        }
    }

    /// Block statistics of the image file, in EBS snapshot blocks.
    public struct BlockSummary: Sendable, Hashable, Codable {
        /// The block size in bytes: 524288, the only block size of the EBS direct APIs.
        public var size: Int
        /// Blocks in the image file, the last one possibly partial (`ceil(volume.size / size)`).
        public var count: UInt64
        /// Blocks holding at least one non-zero byte: the blocks an upload stores.
        public var written: UInt64
        /// `written * size`: the full snapshot size EBS bills and initializes.
        public var writtenBytes: UInt64
        /// base64 of the LINEAR aggregate: sha256 over the raw sha256 digests of the written blocks, ascending.
        public var checksum: String
        /// Always `SHA256`.
        public var checksumAlgorithm: String
        /// Always `LINEAR`.
        public var aggregationMethod: String

        public init(size: Int, count: UInt64, written: UInt64, writtenBytes: UInt64, checksum: String,
                    checksumAlgorithm: String = "SHA256", aggregationMethod: String = "LINEAR") {
            self.size = size
            self.count = count
            self.written = written
            self.writtenBytes = writtenBytes
            self.checksum = checksum
            self.checksumAlgorithm = checksumAlgorithm
            self.aggregationMethod = aggregationMethod
        }

        /// The summary of hashed blocks.
        public init(_ hashes: BlockHashes) {
            self.init(size: hashes.blockSize, count: hashes.blockCount, written: hashes.writtenCount,
                      writtenBytes: hashes.writtenBytes, checksum: hashes.linearChecksum)
        }
    }

    /// Where the per-block digests are and how to check them.
    public struct BlockDigestsReference: Sendable, Hashable, Codable {
        /// The sidecar's file name, relative to the manifest's directory.
        public var file: String
        /// The sidecar format, ``BlockDigestFile/formatName``.
        public var format: String
        /// sha256 of the sidecar file's bytes.
        public var digest: Digest
        /// The sidecar's size in bytes.
        public var size: UInt64

        public init(file: String, format: String = BlockDigestFile.formatName, digest: Digest, size: UInt64) {
            self.file = file
            self.format = format
            self.digest = digest
            self.size = size
        }
    }
}
