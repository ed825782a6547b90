import KilnDigest

/// One image selected from a source for one platform, with its manifest and config read and parsed.
public struct ResolvedImage: Sendable {
    /// The source it came from, as the user wrote it.
    public var source: ImageSource
    /// Tags or `repo:tag` names the source gives this image (may be empty).
    public var names: [String]
    /// The index descriptors walked to reach the manifest, outermost first (empty for a plain manifest).
    public var indexChain: [Descriptor]
    /// The manifest's descriptor.
    public var manifestDescriptor: Descriptor
    public var manifest: ImageManifest
    /// The manifest bytes exactly as stored (or as kiln built them).
    public var manifestBytes: [UInt8]
    public var config: ImageConfig
    /// The config bytes exactly as stored.
    public var configBytes: [UInt8]
    /// The bytes of each index in `indexChain`.
    public var indexBytes: [[UInt8]]
    /// The platform of the image (from the index entry, else the config).
    public var platform: Platform
    /// Layers bottom-first, each with the diffID the config promises.
    public var layers: [ImageLayer]
    /// Where all of this image's blobs are read from.
    public var store: any BlobStore
    /// True when kiln built the manifest itself (legacy `docker save` archives carry none).
    public var synthesizedManifest: Bool

    /// A label for messages: the first name, else the source and platform.
    public var displayName: String {
        if let n = names.first { return n }
        return "\(source) (\(platform))"
    }

    /// The descriptor an image record points at: the outermost index, or the manifest.
    public var target: Descriptor { indexChain.first ?? manifestDescriptor }

    /// chainIDs of the layers as the config declares them.
    public var chainIDs: [Digest] { Digest.chainIDs(diffIDs: layers.map(\.diffID)) }
}

/// A layer of an image: its descriptor and the diffID promised by the image config.
public struct ImageLayer: Sendable, Hashable {
    public var index: Int
    public var descriptor: Descriptor
    public var diffID: Digest
    /// The compression the media type declares (sniffed for docker archives).
    public var compression: Compression
}

/// A problem found while resolving or verifying an image: which image, what part, expected vs actual.
public struct Problem: Sendable, Hashable, Codable, CustomStringConvertible {
    public var image: String
    /// e.g. `manifest`, `config`, `layer 2`.
    public var subject: String
    public var digest: String?
    public var message: String
    public var expected: String?
    public var actual: String?

    public init(image: String, subject: String, digest: String? = nil, message: String, expected: String? = nil, actual: String? = nil) {
        self.image = image
        self.subject = subject
        self.digest = digest
        self.message = message
        self.expected = expected
        self.actual = actual
    }

    public var description: String {
        var s = "\(image): \(subject)"
        if let digest { s += " \(digest)" }
        s += ": \(message)"
        if let expected, let actual { s += " (expected \(expected), got \(actual))" }
        return s
    }
}
