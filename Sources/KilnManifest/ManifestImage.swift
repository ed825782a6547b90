import KilnDigest

/// A content descriptor as the manifest records it: just what identifies a blob.
public struct ManifestDescriptor: Sendable, Hashable, Codable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64

    public init(mediaType: String, digest: Digest, size: Int64) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
    }
}

/// One image baked into the volume, filled in by the bake.
public struct ManifestImage: Sendable, Hashable, Codable {
    /// The references the image is known by (e.g. `docker.io/library/nginx:1.27`), sorted.
    public var names: [String]
    /// `os/arch[/variant]`.
    public var platform: String
    /// The index chain that led to the manifest, outermost first; empty when the source named a manifest.
    public var indexes: [ManifestDescriptor]
    public var manifest: ManifestDescriptor
    public var config: ManifestDescriptor
    /// The layers, bottom first.
    public var layers: [ManifestLayer]

    public init(names: [String], platform: String, indexes: [ManifestDescriptor] = [], manifest: ManifestDescriptor,
                config: ManifestDescriptor, layers: [ManifestLayer]) {
        self.names = names
        self.platform = platform
        self.indexes = indexes
        self.manifest = manifest
        self.config = config
        self.layers = layers
    }
}

/// One layer of a baked image.
public struct ManifestLayer: Sendable, Hashable, Codable {
    /// Digest of the layer blob as stored (compressed).
    public var digest: Digest
    public var mediaType: String
    /// Size of the layer blob as stored.
    public var size: Int64
    /// Digest of the uncompressed tar.
    public var diffID: Digest
    /// chainID of the stack up to and including this layer.
    public var chainID: Digest
    /// Size of the uncompressed tar.
    public var uncompressedSize: Int64
    /// Tar entries in the layer.
    public var entries: Int
    /// The containerd snapshot the layer was unpacked into (its id under the overlayfs snapshotter), when the
    /// layout has one.
    public var snapshotId: String?

    public init(digest: Digest, mediaType: String, size: Int64, diffID: Digest, chainID: Digest,
                uncompressedSize: Int64, entries: Int, snapshotId: String? = nil) {
        self.digest = digest
        self.mediaType = mediaType
        self.size = size
        self.diffID = diffID
        self.chainID = chainID
        self.uncompressedSize = uncompressedSize
        self.entries = entries
        self.snapshotId = snapshotId
    }
}
