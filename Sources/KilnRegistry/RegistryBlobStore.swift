import Foundation
import KilnDigest
import KilnOCI

/// The blobs of one registry repository, as a ``BlobStore``: documents (indexes, manifests, configs) fetched
/// whole when read, layers streamed, several at once in the order the bake will read them, and the cache
/// consulted first.
final class RegistryBlobStore: BlobStore, @unchecked Sendable {
    let client: RegistryClient
    let session: RegistrySession
    let repository: String
    let displayName: String
    private let lock = NSLock()
    private var documents: [Digest: [UInt8]] = [:]
    private var order: [Descriptor] = []
    private var started: [Digest: RemoteBlobReader] = [:]
    private var opened: Set<Digest> = []

    init(client: RegistryClient, session: RegistrySession, repository: String, displayName: String) {
        self.client = client
        self.session = session
        self.repository = repository
        self.displayName = displayName
    }

    deinit {
        for reader in started.values { reader.finish() }
    }

    func remember(_ bytes: [UInt8], digest: Digest) { lock.withLock { documents[digest] = bytes } }

    func locate(_ digest: Digest) throws -> BlobLocation? {
        if let bytes = lock.withLock({ documents[digest] }) {
            return BlobLocation(remote: MemoryBlob(bytes: bytes), length: Int64(bytes.count), displayName: "\(displayName)@\(digest)")
        }
        return nil
    }

    func locate(_ descriptor: Descriptor) throws -> BlobLocation? {
        if let known = try locate(descriptor.digest) { return known }
        if let cached = client.cache?.location(of: descriptor) { return cached }
        let name = "\(displayName)@\(descriptor.digest)"
        if client.options.offline {
            throw RegistryError.notCached(name: name, detail: "the cache \(client.cache?.root ?? "") does not hold this blob (\(descriptor.mediaType), \(descriptor.size) bytes)")
        }
        if MediaType.isIndex(descriptor.mediaType) || MediaType.isManifest(descriptor.mediaType) || MediaType.isConfig(descriptor.mediaType)
            || descriptor.size <= 1 << 20 && MediaType.layerCompression(descriptor.mediaType) == nil {
            return BlobLocation(remote: RemoteDocument(store: self, descriptor: descriptor), length: descriptor.size, displayName: name)
        }
        return BlobLocation(remote: RemoteLayer(store: self, descriptor: descriptor), length: descriptor.size, displayName: name)
    }

    func willRead(_ descriptors: [Descriptor]) {
        lock.withLock {
            order = descriptors.filter { client.cache?.location(of: $0) == nil }
        }
    }

    /// The reader of a layer: the one already fetching it ahead, or a new one; then the next layers in the
    /// bake's order are started, up to `layersInFlight` at once.
    func openLayer(_ descriptor: Descriptor) -> RemoteBlobReader {
        lock.withLock {
            let reader: RemoteBlobReader
            if let ahead = started.removeValue(forKey: descriptor.digest), !opened.contains(descriptor.digest) {
                reader = ahead
            } else {
                reader = makeReader(descriptor)
            }
            opened.insert(descriptor.digest)
            if let i = order.firstIndex(where: { $0.digest == descriptor.digest }) {
                for next in order[(i + 1)...] where started.count < max(0, client.options.layersInFlight - 1) {
                    if started[next.digest] == nil, !opened.contains(next.digest) { started[next.digest] = makeReader(next) }
                }
            }
            return reader
        }
    }

    private func makeReader(_ descriptor: Descriptor) -> RemoteBlobReader {
        RemoteBlobReader(descriptor: descriptor, repository: repository, session: session, cache: client.cache, options: client.options)
    }

    /// Fetches a document: a manifest or index by digest from the manifests endpoint, anything else as a blob;
    /// kept in the cache once its digest matched.
    func fetchDocument(_ descriptor: Descriptor) throws -> [UInt8] {
        let bytes: [UInt8]
        if MediaType.isIndex(descriptor.mediaType) || MediaType.isManifest(descriptor.mediaType) {
            let (client, session, repo, name) = (client, session, repository, displayName)
            bytes = try blocking {
                try await client.fetchManifest(repo: repo, reference: descriptor.digest.description, session: session, display: "\(name)@\(descriptor.digest)").bytes
            }
        } else {
            let (client, session, repo) = (client, session, repository)
            bytes = try blocking { try await client.documentBlob(descriptor, repo: repo, session: session) }
        }
        if SHA256Hasher.hash(bytes) == descriptor.digest { try client.cache?.store(bytes, digest: descriptor.digest) }
        remember(bytes, digest: descriptor.digest)
        return bytes
    }
}

/// Bytes already in memory.
struct MemoryBlob: RemoteBlob {
    var bytes: [UInt8]
    func open() throws -> any BlobReader { MemoryBlobReader(bytes: bytes) }
}

final class MemoryBlobReader: BlobReader {
    let bytes: [UInt8]
    var position = 0
    init(bytes: [UInt8]) { self.bytes = bytes }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - position)
        guard n > 0, let base = buffer.baseAddress else { return 0 }
        bytes.withUnsafeBytes { if let s = $0.baseAddress { base.copyMemory(from: s + position, byteCount: n) } }
        position += n
        return n
    }
}

/// A document of the registry, fetched whole when opened.
struct RemoteDocument: RemoteBlob, @unchecked Sendable {
    let store: RegistryBlobStore
    let descriptor: Descriptor
    func open() throws -> any BlobReader { MemoryBlobReader(bytes: try store.fetchDocument(descriptor)) }
}

/// A layer of the registry, streamed when opened.
struct RemoteLayer: RemoteBlob, @unchecked Sendable {
    let store: RegistryBlobStore
    let descriptor: Descriptor
    func open() throws -> any BlobReader { store.openLayer(descriptor) }
}

/// Opens `docker://` sources for ``SourceReader``: resolves the reference (pinning a tag to the digest it has
/// now) and gives the repository's blobs.
public struct RegistryImageOpener: RemoteImageOpener {
    public let client: RegistryClient

    public init(client: RegistryClient) { self.client = client }

    public init(options: RegistryOptions) throws { client = try RegistryClient(options: options) }

    public func open(_ source: ImageSource) throws -> SourceReader.RemoteImage {
        guard let name = source.imageName else { throw ImageSource.Error.empty }
        let client = client
        let fetched = try blocking { try await client.manifest(name) }
        let session = try client.session(name.host)
        let store = RegistryBlobStore(client: client, session: session, repository: name.path, displayName: "docker://\(name.repository)")
        store.remember(fetched.bytes, digest: fetched.descriptor.digest)
        if let cache = client.cache {
            try cache.record(name: name.description, descriptor: fetched.descriptor)
        }
        return SourceReader.RemoteImage(store: store, descriptor: fetched.descriptor, names: [name.description])
    }
}
