import KilnDigest

/// The previous bake a volume was baked against (`kiln bake --base`), and what changed relative to it.
public struct ManifestBase: Sendable, Hashable, Codable {
    /// sha256 of the base's `manifest.json`.
    public var manifest: Digest
    /// The base's recipe and bake time.
    public var recipe: SnapshotManifest.Recipe
    public var createdAt: String
    /// The base's LINEAR checksum: which blocks the base was.
    public var checksum: String
    /// The EBS snapshots of the base by region, as its manifest recorded them when this bake read it: an upload
    /// with a parent starts from the one in its region.
    public var snapshots: [String: String]?
    /// 512 KiB blocks whose bytes differ from the base's: written differently, newly written, or zero where the
    /// base had data. These, and only these, are what an upload with the base's snapshot as parent sends.
    public var changedBlocks: UInt64
    /// `changedBlocks * 524288`.
    public var changedBytes: UInt64
    /// Written blocks identical to the base's.
    public var unchangedBlocks: UInt64
    /// Filesystem inodes that kept their number and blocks from the base.
    public var keptInodes: UInt64
    /// The sidecar listing the changed blocks with the digest each has now (the zero block's digest where the
    /// volume no longer has data), in the block digest format.
    public var changes: SnapshotManifest.BlockDigestsReference

    public init(manifest: Digest, recipe: SnapshotManifest.Recipe, createdAt: String, checksum: String, snapshots: [String: String]?,
                changedBlocks: UInt64, changedBytes: UInt64, unchangedBlocks: UInt64, keptInodes: UInt64,
                changes: SnapshotManifest.BlockDigestsReference) {
        self.manifest = manifest
        self.recipe = recipe
        self.createdAt = createdAt
        self.checksum = checksum
        self.snapshots = snapshots
        self.changedBlocks = changedBlocks
        self.changedBytes = changedBytes
        self.unchangedBlocks = unchangedBlocks
        self.keptInodes = keptInodes
        self.changes = changes
    }

    /// The default file name of the changed-block sidecar.
    public static let changesFileName = "manifest.changes"
    /// The format the changed-block sidecar is recorded with.
    public static let changesFormat = "kiln-changed-blocks-v1"

    /// The blocks of `new` that differ from `base` (both ascending by index, written blocks only): a block
    /// only in `base` becomes an explicit zero block.
    public static func changes(from base: [BlockDigest], to new: [BlockDigest], blockSize: Int) -> (changed: [BlockDigest], unchanged: UInt64) {
        let zero = BlockDigest.zeroBlockSHA256(size: blockSize)
        var out: [BlockDigest] = []
        var unchanged: UInt64 = 0
        var i = 0
        var j = 0
        while i < base.count || j < new.count {
            if j < new.count && (i == base.count || new[j].index < base[i].index) {
                out.append(new[j])
                j += 1
            } else if i < base.count && (j == new.count || base[i].index < new[j].index) {
                out.append(BlockDigest(index: base[i].index, sha256: zero))
                i += 1
            } else {
                if new[j].sha256 == base[i].sha256 { unchanged += 1 } else { out.append(new[j]) }
                i += 1
                j += 1
            }
        }
        return (out, unchanged)
    }
}

/// What the manifest writer needs to know of a base.
public struct BaseInput: Sendable, Hashable {
    public var manifestDigest: Digest
    public var manifest: SnapshotManifest
    /// The base's written blocks.
    public var blocks: [BlockDigest]
    public var keptInodes: UInt64

    public init(manifestDigest: Digest, manifest: SnapshotManifest, blocks: [BlockDigest], keptInodes: UInt64) {
        self.manifestDigest = manifestDigest
        self.manifest = manifest
        self.blocks = blocks
        self.keptInodes = keptInodes
    }
}
