import KilnDigest

/// An OCI content descriptor: what a blob is, its digest and size.
public struct Descriptor: Hashable, Sendable, Codable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var annotations: [String: String]?
    public var platform: Platform?
    public var urls: [String]?

    public init(mediaType: String, digest: Digest, size: Int64, annotations: [String: String]? = nil, platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }

    /// The `org.opencontainers.image.ref.name` annotation (a tag in an image layout's index).
    public var refName: String? { annotations?["org.opencontainers.image.ref.name"] }
}

/// An image index (OCI) or manifest list (Docker).
public struct ImageIndex: Sendable, Codable {
    public var schemaVersion: Int?
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?
}

/// A single-platform image manifest.
public struct ImageManifest: Sendable, Codable {
    public var schemaVersion: Int?
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?
}

/// The parts of an image configuration kiln reads.
public struct ImageConfig: Sendable, Codable {
    public struct RootFS: Sendable, Codable {
        public var type: String
        public var diffIDs: [Digest]
        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }

    public var architecture: String?
    public var os: String?
    public var variant: String?
    public var created: String?
    public var rootfs: RootFS

    public var platform: Platform? {
        guard let os, let architecture else { return nil }
        return Platform(os: os, architecture: architecture, variant: variant)
    }
}
