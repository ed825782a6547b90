/// OCI and Docker media types kiln understands, and what they mean for reading a blob.
public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let ociLayerNondistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    /// True for image indexes (OCI) and manifest lists (Docker).
    public static func isIndex(_ type: String) -> Bool { type == ociIndex || type == dockerManifestList }
    /// True for single-platform image manifests.
    public static func isManifest(_ type: String) -> Bool { type == ociManifest || type == dockerManifest }
    /// True for image configuration blobs.
    public static func isConfig(_ type: String) -> Bool { type == ociConfig || type == dockerConfig }

    /// The compression a layer media type declares, or nil when the media type is not a known layer type.
    public static func layerCompression(_ type: String) -> Compression? {
        switch type {
        case ociLayer, ociLayerNondistributable, dockerLayer: return Compression.none
        case ociLayerGzip, ociLayerNondistributableGzip, dockerLayerGzip, dockerForeignLayerGzip: return .gzip
        case ociLayerZstd, ociLayerNondistributableZstd, dockerLayerZstd: return .zstd
        default: return nil
        }
    }
}

/// How a layer blob is compressed.
public enum Compression: String, Sendable, Codable, CustomStringConvertible {
    case none
    case gzip
    case zstd

    public var description: String { rawValue }

    /// Guesses the compression from a blob's first bytes (gzip 1f 8b, zstd 28 b5 2f fd or a skippable frame).
    public static func sniff(_ prefix: [UInt8]) -> Compression {
        if prefix.count >= 2, prefix[0] == 0x1f, prefix[1] == 0x8b { return .gzip }
        if prefix.count >= 4 {
            if prefix[0] == 0x28, prefix[1] == 0xb5, prefix[2] == 0x2f, prefix[3] == 0xfd { return .zstd }
            // zstd skippable frames: magic 0x184D2A50..0x184D2A5F, little endian.
            if prefix[0] & 0xf0 == 0x50, prefix[1] == 0x2a, prefix[2] == 0x4d, prefix[3] == 0x18 { return .zstd }
        }
        return Compression.none
    }
}
