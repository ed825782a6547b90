import Foundation
import KilnCore
import KilnDigest

/// Opens registry sources (`docker://`): resolves the reference to a manifest descriptor and gives a store that
/// fetches blobs as they are read. Implemented outside this module, by the registry client.
public protocol RemoteImageOpener: Sendable {
    func open(_ source: ImageSource) throws -> SourceReader.RemoteImage
}

/// Reads an image source and resolves the images it holds to platform-specific manifests and configs.
///
/// Input that kiln cannot interpret (no index, malformed JSON, unknown media types, a tag that is not there)
/// throws ``SourceReader/Error``. Content that does not match its digest is reported as ``Problem``s so that a
/// verification can go on and report everything at once.
public struct SourceReader: Sendable {
    public let source: ImageSource
    let store: any BlobStore
    let entries: [Entry]

    /// Names the store a registry source gives (the registry's blobs, fetched as they are read), the manifest
    /// descriptor it resolved, and the names the image takes.
    public struct RemoteImage: Sendable {
        public var store: any BlobStore
        public var descriptor: Descriptor
        public var names: [String]

        public init(store: any BlobStore, descriptor: Descriptor, names: [String]) {
            self.store = store
            self.descriptor = descriptor
            self.names = names
        }
    }

    /// JSON documents larger than this are refused (manifests and configs are kilobytes).
    public static let jsonLimit: Int64 = 8 << 20

    struct Entry: Sendable {
        var names: [String]
        var descriptor: Descriptor
        /// For legacy docker archives: the manifest kiln builds, with its config and layers already located.
        var legacy: LegacyImage?
    }

    struct LegacyImage: Sendable {
        var manifestBytes: [UInt8]
        var configBytes: [UInt8]
        var configProblem: Problem?
        var layerCompressions: [Compression]
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case missingIndex(String)
        case malformedJSON(String, detail: String)
        case unknownMediaType(String, where: String)
        case referenceNotFound(String, in: String, available: [String])
        case noImages(String)
        case platformNotFound(String, platform: Platform, available: [Platform])
        case invalidDocument(String, detail: String)
        case registryUnsupported(String)

        public var description: String {
            switch self {
            case .missingIndex(let p): return "\(p): not an OCI image layout (index.json is missing)"
            case .malformedJSON(let what, let detail): return "\(what): malformed JSON: \(detail)"
            case .unknownMediaType(let t, let w): return "\(w): unsupported media type '\(t)'"
            case .referenceNotFound(let r, let s, let available):
                let list = available.isEmpty ? "it has no tagged images" : "available: " + available.joined(separator: ", ")
                return "\(s): no image named '\(r)' (\(list))"
            case .noImages(let s): return "\(s): no images found"
            case .platformNotFound(let name, let p, let available):
                return "\(name): no manifest for platform \(p) (available: \(available.map(\.description).joined(separator: ", ")))"
            case .invalidDocument(let what, let detail): return "\(what): \(detail)"
            case .registryUnsupported(let s): return "\(s): this command cannot read registry sources"
            }
        }
    }

    /// Opens a source: reads its index (or `manifest.json`) and selects the images its reference names.
    ///
    /// A registry source needs `remote`, which fetches its manifest; every other kind is read from files.
    public init(_ source: ImageSource, remote: (any RemoteImageOpener)? = nil) throws {
        self.source = source
        switch source.kind {
        case .registry:
            guard let remote else { throw Error.registryUnsupported(source.description) }
            let opened = try remote.open(source)
            self.store = opened.store
            self.entries = [Entry(names: opened.names, descriptor: opened.descriptor, legacy: nil)]
        case .ociLayout:
            let root = source.path
            guard FileManager.default.fileExists(atPath: root + "/index.json") else {
                if !FileManager.default.fileExists(atPath: root) { throw ImageSource.Error.notFound(root) }
                throw Error.missingIndex(root)
            }
            let store = LayoutBlobStore(root: root)
            let bytes = try RangeReader(BlobLocation(path: root + "/index.json", offset: 0,
                length: Self.fileSize(root + "/index.json"), displayName: root + "/index.json")).readAll(limit: Self.jsonLimit)
            self.store = store
            self.entries = try Self.layoutEntries(indexBytes: bytes, where: root + "/index.json", reference: source.reference, sourceName: source.description)
        case .ociArchive:
            let tar = try TarIndex(path: source.path)
            guard let indexLocation = tar.location(of: "index.json") else { throw Error.missingIndex(source.path) }
            let bytes = try RangeReader(indexLocation).readAll(limit: Self.jsonLimit)
            self.store = ArchiveBlobStore(archive: tar)
            self.entries = try Self.layoutEntries(indexBytes: bytes, where: indexLocation.displayName, reference: source.reference, sourceName: source.description)
        case .dockerArchive:
            let tar = try TarIndex(path: source.path)
            let (store, entries) = try Self.dockerEntries(tar: tar, reference: source.reference, sourceName: source.description)
            self.store = store
            self.entries = entries
        }
    }

    static func fileSize(_ path: String) throws -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw BlobError.io(path, errno: errno) }
        return Int64(st.st_size)
    }

    /// The top-level keys of a JSON document, exactly as written.
    struct DocumentKeys: Decodable {
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        var keys: [String]
        var mediaType: String?

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            keys = container.allKeys.map(\.stringValue)
            mediaType = try? container.decodeIfPresent(String.self, forKey: Key(stringValue: "mediaType"))
        }
    }

    /// Refuses an index, manifest or config document that two readers could read differently: keys that differ
    /// only in case (Go's decoder, hence containerd, matches them case-insensitively and takes the last; Swift's
    /// takes the exact one), a document that is both an index and a manifest, a `mediaType` that disagrees with
    /// the descriptor that led to it.
    static func checkShape(_ bytes: [UInt8], kind: DocumentKind, descriptorMediaType: String?, what: String) throws {
        guard let shape = try? JSONDecoder().decode(DocumentKeys.self, from: Data(bytes)) else { return }
        var seen: [String: String] = [:]
        for key in shape.keys.sorted() {
            if let other = seen[key.lowercased()] {
                throw Error.invalidDocument(what, detail: "keys '\(other)' and '\(key)' differ only in case; readers disagree on which one counts")
            }
            seen[key.lowercased()] = key
        }
        let keys = Set(shape.keys.map { $0.lowercased() })
        switch kind {
        case .index where keys.contains("layers") || keys.contains("config"):
            throw Error.invalidDocument(what, detail: "the document is both an index (manifests) and a manifest (layers or config)")
        case .manifest where keys.contains("manifests"):
            throw Error.invalidDocument(what, detail: "the document is both a manifest (layers, config) and an index (manifests)")
        default:
            break
        }
        if kind != .config, let own = shape.mediaType, let expected = descriptorMediaType, own != expected {
            throw Error.invalidDocument(what, detail: "its mediaType is '\(own)' but its descriptor says '\(expected)'")
        }
    }

    enum DocumentKind { case index, manifest, config }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String) throws -> T {
        let value: T
        do {
            value = try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let DecodingError.dataCorrupted(ctx) {
            throw Error.malformedJSON(what, detail: Self.describe(ctx))
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw Error.malformedJSON(what, detail: "missing field '\(Self.path(ctx.codingPath + [key]))'")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw Error.malformedJSON(what, detail: "wrong type at '\(Self.path(ctx.codingPath))'")
        } catch let DecodingError.valueNotFound(_, ctx) {
            throw Error.malformedJSON(what, detail: "null at '\(Self.path(ctx.codingPath))'")
        } catch {
            throw Error.malformedJSON(what, detail: "\(error)")
        }
        // Go keeps the last of a repeated key and Foundation the first: the same digest would mean different
        // layers to kiln and to containerd.
        if let key = JSONDuplicateKeys.first(in: bytes) {
            throw Error.invalidDocument(what, detail: "key '\(key)' is given twice; readers disagree on which one counts")
        }
        return value
    }

    static func describe(_ ctx: DecodingError.Context) -> String {
        if let underlying = ctx.underlyingError as? Digest.Error {
            return "\(underlying) at '\(path(ctx.codingPath))'"
        }
        if let underlying = ctx.underlyingError as? Platform.Error {
            return "\(underlying) at '\(path(ctx.codingPath))'"
        }
        if ctx.codingPath.isEmpty { return "not valid JSON" }
        return "invalid value at '\(path(ctx.codingPath))'"
    }

    static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }

    static func layoutEntries(indexBytes: [UInt8], where what: String, reference: String?, sourceName: String) throws -> [Entry] {
        let index = try decode(ImageIndex.self, indexBytes, what: what)
        let tagged = index.manifests.filter { $0.refName != nil }
        if let reference {
            let matches = index.manifests.filter { $0.refName == reference }
            guard !matches.isEmpty else {
                throw Error.referenceNotFound(reference, in: sourceName, available: tagged.compactMap(\.refName))
            }
            return matches.map { Entry(names: [reference], descriptor: $0, legacy: nil) }
        }
        if !tagged.isEmpty {
            return tagged.map { Entry(names: [$0.refName ?? ""], descriptor: $0, legacy: nil) }
        }
        guard !index.manifests.isEmpty else { throw Error.noImages(sourceName) }
        return index.manifests.map { Entry(names: [], descriptor: $0, legacy: nil) }
    }

    /// The `manifest.json` of a `docker save` archive.
    struct DockerManifestEntry: Decodable {
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    static func dockerEntries(tar: TarIndex, reference: String?, sourceName: String) throws -> (any BlobStore, [Entry]) {
        guard let manifestLocation = tar.location(of: "manifest.json") else {
            throw SourceReader.Error.invalidDocument(tar.path, detail: "not a docker archive (manifest.json is missing)")
        }
        let bytes = try RangeReader(manifestLocation).readAll(limit: jsonLimit)
        let list = try decode([DockerManifestEntry].self, bytes, what: manifestLocation.displayName)
        var selected = list
        if let reference {
            selected = list.filter { ($0.RepoTags ?? []).contains(reference) || ($0.RepoTags ?? []).contains("docker.io/" + reference) }
            guard !selected.isEmpty else {
                throw Error.referenceNotFound(reference, in: sourceName, available: list.flatMap { $0.RepoTags ?? [] })
            }
        }
        guard !selected.isEmpty else { throw Error.noImages(sourceName) }

        var locations: [Digest: BlobLocation] = [:]
        var entries: [Entry] = []
        for item in selected {
            let what = "\(manifestLocation.displayName) entry \(item.RepoTags?.first ?? item.Config)"
            // Member paths name files inside the archive: `..` or a leading `/` could only mean something else.
            for path in [item.Config] + item.Layers where Self.leavesArchive(path) {
                throw Error.invalidDocument(what, detail: "'\(path)' is not a path inside the archive ('..' components and absolute paths are refused)")
            }
            guard let configLocation = tar.location(of: item.Config) else {
                throw Error.invalidDocument(what, detail: "config '\(item.Config)' is not in the archive")
            }
            let configBytes = try RangeReader(configLocation).readAll(limit: jsonLimit)
            let configDigest = SHA256Hasher.hash(configBytes)
            var configProblem: Problem? = nil
            if let named = Self.digestInName(item.Config), named != configDigest {
                configProblem = Problem(image: item.RepoTags?.first ?? sourceName, subject: "config", digest: named.description,
                                        message: "config digest mismatch", expected: named.description, actual: configDigest.description)
            }
            locations[configDigest] = configLocation
            let config = try decode(ImageConfig.self, configBytes, what: configLocation.displayName)
            guard config.rootfs.diffIDs.count == item.Layers.count else {
                throw Error.invalidDocument(what, detail: "config lists \(config.rootfs.diffIDs.count) diff_ids but the archive lists \(item.Layers.count) layers")
            }
            var layerDescriptors: [Descriptor] = []
            var compressions: [Compression] = []
            for (i, layerPath) in item.Layers.enumerated() {
                guard let loc = tar.location(of: layerPath) else {
                    throw Error.invalidDocument(what, detail: "layer \(i) '\(layerPath)' is not in the archive")
                }
                let reader = try RangeReader(loc)
                var prefix = [UInt8](repeating: 0, count: Int(min(4, loc.length)))
                _ = try prefix.withUnsafeMutableBytes { try reader.read(into: $0) }
                let compression = Compression.sniff(prefix)
                var digest: Digest
                if let named = Self.digestInName(layerPath) {
                    digest = named
                } else if compression == .none {
                    // An uncompressed layer's digest is its diffID; verification hashes it and compares.
                    digest = config.rootfs.diffIDs[i]
                } else {
                    digest = try Self.hash(loc)
                }
                locations[digest] = loc
                let type = compression == .gzip ? MediaType.dockerLayerGzip : compression == .zstd ? MediaType.dockerLayerZstd : MediaType.dockerLayer
                layerDescriptors.append(Descriptor(mediaType: type, digest: digest, size: loc.length))
                compressions.append(compression)
            }
            let manifest = ImageManifest(
                schemaVersion: 2, mediaType: MediaType.dockerManifest,
                config: Descriptor(mediaType: MediaType.dockerConfig, digest: configDigest, size: Int64(configBytes.count)),
                layers: layerDescriptors, annotations: nil)
            let manifestBytes = try Self.canonicalJSON(manifest)
            let descriptor = Descriptor(mediaType: MediaType.dockerManifest, digest: SHA256Hasher.hash(manifestBytes), size: Int64(manifestBytes.count))
            let names = reference.map { [$0] } ?? (item.RepoTags ?? [])
            entries.append(Entry(names: names, descriptor: descriptor,
                                 legacy: LegacyImage(manifestBytes: manifestBytes, configBytes: configBytes, configProblem: configProblem, layerCompressions: compressions)))
        }
        return (MappedBlobStore(displayName: tar.path, locations: locations), entries)
    }

    /// `blobs/sha256/<hex>` or `<hex>.json` names carry the digest of their content.
    /// True for a docker-archive member path with a `..` component or a leading `/`.
    static func leavesArchive(_ path: String) -> Bool {
        path.hasPrefix("/") || path.split(separator: "/", omittingEmptySubsequences: false).contains("..")
    }

    static func digestInName(_ path: String) -> Digest? {
        let last = path.split(separator: "/").last.map(String.init) ?? path
        let hex = last.hasSuffix(".json") ? String(last.dropLast(5)) : last
        if path.contains("blobs/sha256/") || last.hasSuffix(".json") {
            return try? Digest(parsing: "sha256:" + hex)
        }
        return nil
    }

    static func hash(_ location: BlobLocation) throws -> Digest {
        let reader = try RangeReader(location)
        let hasher = SHA256Hasher()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = try reader.read(into: buffer)
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return hasher.finalize()
    }

    /// Deterministic JSON for documents kiln writes itself.
    static func canonicalJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(value))
    }
}
