import Foundation
import KilnBolt
import KilnDigest
import KilnOCI

/// The containerd root (`/var/lib/containerd`) a pull and unpack would leave, as a model: content blobs with
/// their garbage-collection labels, image records, and one committed overlayfs snapshot per distinct chainID.
///
/// The model turns into the two bbolt databases containerd reads: `meta.db` (metadata plugin) and the overlayfs
/// snapshotter's `metadata.db`. File contents (blobs, unpacked layers) are written by the caller; the model says
/// where they go.
public struct ContainerdRoot: Sendable {
    public static let metaDBVersion: Int64 = 3
    public static let snapshotter = "overlayfs"

    /// Paths inside the containerd root.
    public enum Paths {
        public static let content = "io.containerd.content.v1.content"
        public static let blobs = "io.containerd.content.v1.content/blobs/sha256"
        public static let ingest = "io.containerd.content.v1.content/ingest"
        public static let metadata = "io.containerd.metadata.v1.bolt"
        public static let metaDB = "io.containerd.metadata.v1.bolt/meta.db"
        public static let overlayfs = "io.containerd.snapshotter.v1.overlayfs"
        public static let snapshots = "io.containerd.snapshotter.v1.overlayfs/snapshots"
        public static let snapshotterDB = "io.containerd.snapshotter.v1.overlayfs/metadata.db"

        public static func blob(_ d: Digest) -> String { "\(blobs)/\(d.encoded)" }
        public static func snapshotFS(_ id: UInt64) -> String { "\(snapshots)/\(id)/fs" }
    }

    /// A blob in the content store and its labels.
    public struct Blob: Sendable, Hashable {
        public var digest: Digest
        public var size: Int64
        public var labels: [String: String]
        /// Where the bytes come from: kept JSON documents, or a layer blob at a source location.
        public var bytes: [UInt8]?
        public var location: BlobLocation?
    }

    /// An image record (`ctr images ls`).
    public struct Image: Sendable, Hashable {
        public var name: String
        public var target: Descriptor
        public var labels: [String: String]
    }

    /// A committed snapshot: one unpacked layer.
    public struct Snapshot: Sendable, Hashable {
        public var chainID: Digest
        public var parent: Digest?
        /// The snapshotter's id: the directory `snapshots/<id>`.
        public var id: UInt64
        /// The metadata store's sequence number in the snapshot's backend key.
        public var sequence: UInt64
        /// The layer unpacked into it.
        public var diffID: Digest
        public var layerDigest: Digest
        /// Filled after unpacking: unique inodes and bytes used (`st_blocks * 512`), as the snapshotter reports.
        public var inodes: Int64 = 0
        public var size: Int64 = 0
        public var children: [Digest] = []

        /// `<namespace>/<seq>/<chainID>`: the key in the snapshotter's database.
        public func backendKey(namespace: String) -> String { "\(namespace)/\(sequence)/\(chainID)" }
    }

    public var namespace: String
    public var createdAt: GoTime
    public private(set) var blobs: [Digest: Blob] = [:]
    public private(set) var images: [String: Image] = [:]
    public private(set) var snapshots: [Digest: Snapshot] = [:]
    /// chainIDs in the order their snapshots were created (parents first).
    public private(set) var snapshotOrder: [Digest] = []

    public init(namespace: String = "k8s.io", createdAt: GoTime) {
        self.namespace = namespace
        self.createdAt = createdAt
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case invalidName(String, String)
        case conflictingName(String)

        public var description: String {
            switch self {
            case .invalidName(let n, let why): return "image name '\(n)': \(why)"
            case .conflictingName(let n): return "image name '\(n)' is given to two different images"
            }
        }
    }

    /// Adds an image as a CRI pull with unpack leaves it.
    ///
    /// - Parameters:
    ///   - names: references as users write them; each gets the `repo:tag` and `repo@digest` records, and the
    ///     image gets its `sha256:<config>` record.
    ///   - keepLayerBlobs: false leaves layer blobs out of the content store (containerd's
    ///     `discard_unpacked_layers`): the snapshots are all a node needs to run the image.
    public mutating func add(_ image: ResolvedImage, names: [String], keepLayerBlobs: Bool) throws {
        let target = image.target
        var parsed: [ImageName] = []
        for n in names {
            do { parsed.append(try ImageName(parsing: n)) } catch { throw Error.invalidName(n, "\(error)") }
        }
        let sources = Dictionary(parsed.map { ("containerd.io/distribution.source.\($0.host)", $0.path) }, uniquingKeysWith: { a, _ in a })

        // Indexes: like containerd, label every manifest an index lists, numbered by its position in the
        // index (platforms not fetched included); the garbage collector ignores references to absent blobs.
        for (i, index) in image.indexChain.enumerated() {
            var labels = sources
            if let children = try? JSONDecoder().decode(ImageIndex.self, from: Data(image.indexBytes[i])).manifests {
                for (position, child) in children.enumerated() {
                    labels["containerd.io/gc.ref.content.m.\(position)"] = child.digest.description
                }
            }
            addBlob(Blob(digest: index.digest, size: index.size, labels: labels, bytes: image.indexBytes[i], location: nil))
        }

        let chain = image.chainIDs
        var manifestLabels = sources
        manifestLabels["containerd.io/gc.ref.content.config"] = image.manifest.config.digest.description
        if keepLayerBlobs {
            for (i, layer) in image.layers.enumerated() {
                manifestLabels["containerd.io/gc.ref.content.l.\(i)"] = layer.descriptor.digest.description
            }
        }
        addBlob(Blob(digest: image.manifestDescriptor.digest, size: Int64(image.manifestBytes.count), labels: manifestLabels,
                     bytes: image.manifestBytes, location: nil))

        var configLabels = sources
        if let top = chain.last { configLabels["containerd.io/gc.ref.snapshot.\(Self.snapshotter)"] = top.description }
        addBlob(Blob(digest: image.manifest.config.digest, size: Int64(image.configBytes.count), labels: configLabels,
                     bytes: image.configBytes, location: nil))

        for (i, layer) in image.layers.enumerated() {
            if keepLayerBlobs {
                var labels = sources
                labels["containerd.io/uncompressed"] = layer.diffID.description
                addBlob(Blob(digest: layer.descriptor.digest, size: layer.descriptor.size, labels: labels, bytes: nil,
                             location: try image.store.locate(layer.descriptor)))
            }
            let chainID = chain[i]
            if snapshots[chainID] == nil {
                let parent: Digest? = i > 0 ? chain[i - 1] : nil
                let id = UInt64(snapshotOrder.count + 1)
                snapshots[chainID] = Snapshot(chainID: chainID, parent: parent, id: id, sequence: id, diffID: layer.diffID,
                                              layerDigest: layer.descriptor.digest)
                snapshotOrder.append(chainID)
                if let parent { snapshots[parent]?.children.append(chainID) }
            }
        }

        let managed = ["io.cri-containerd.image": "managed"]
        var records: [String] = []
        for n in parsed {
            if n.tag != nil {
                var tagged = n
                tagged.digest = nil
                records.append(tagged.description)
            }
            records.append("\(n.repository)@\(target.digest)")
        }
        let stored = Descriptor(mediaType: target.mediaType, digest: target.digest, size: target.size)
        for name in records {
            if let existing = images[name], existing.target != target { throw Error.conflictingName(name) }
            images[name] = Image(name: name, target: stored, labels: managed)
        }
        // The image ID record is CRI's, not the user's: two manifests of one config (the same image published
        // gzip and zstd) share it, and as in a CRI pull of both in turn, the one added last holds it.
        let idRecord = image.manifest.config.digest.description
        images[idRecord] = Image(name: idRecord, target: stored, labels: managed)
    }

    private mutating func addBlob(_ blob: Blob) {
        if var existing = blobs[blob.digest] {
            existing.labels.merge(blob.labels) { a, _ in a }
            if existing.bytes == nil { existing.bytes = blob.bytes }
            if existing.location == nil { existing.location = blob.location }
            blobs[blob.digest] = existing
        } else {
            blobs[blob.digest] = blob
        }
    }

    /// Records what unpacking a snapshot used.
    public mutating func setUsage(_ chainID: Digest, inodes: Int64, size: Int64) {
        snapshots[chainID]?.inodes = inodes
        snapshots[chainID]?.size = size
    }

    /// Snapshots in creation order.
    public var orderedSnapshots: [Snapshot] { snapshotOrder.compactMap { snapshots[$0] } }

    /// A snapshot of an earlier bake: which layer it holds and its directory number.
    public struct SnapshotSlot: Sendable, Hashable {
        public var chainID: Digest
        public var diffID: Digest
        public var id: UInt64
        /// Where the layer sits: the names of an image that has it, and its index there.
        public var names: Set<String>
        public var layerIndex: Int

        public init(chainID: Digest, diffID: Digest, id: UInt64, names: Set<String> = [], layerIndex: Int = -1) {
            self.chainID = chainID
            self.diffID = diffID
            self.id = id
            self.names = names
            self.layerIndex = layerIndex
        }
    }

    /// Gives each snapshot the directory number an earlier bake gave the same content, so that its files are
    /// found again at the same paths: the same chainID first; else an unclaimed snapshot of the same layer
    /// (diffID: an overlayfs snapshot holds its layer's changes only, whatever lies below); else, for a layer
    /// that changed, the unclaimed snapshot at the same place (an image with a name in common, the same layer
    /// index), whose unchanged files are then found again too. The others are numbered after the earlier
    /// bake's highest, in creation order. `places` says where each new snapshot's layer sits. Returns the
    /// numbers kept.
    @discardableResult
    public mutating func reuseSnapshotIDs(_ earlier: [SnapshotSlot], places: [Digest: (names: Set<String>, layerIndex: Int)] = [:]) -> Set<UInt64> {
        var byChain: [Digest: UInt64] = [:]
        var byDiff: [Digest: [UInt64]] = [:]
        for slot in earlier where byChain[slot.chainID] == nil {
            byChain[slot.chainID] = slot.id
            byDiff[slot.diffID, default: []].append(slot.id)
        }
        var assigned: [Digest: UInt64] = [:]
        var taken = Set<UInt64>()
        for chain in snapshotOrder {
            if let id = byChain[chain], taken.insert(id).inserted { assigned[chain] = id }
        }
        for chain in snapshotOrder where assigned[chain] == nil {
            guard let diff = snapshots[chain]?.diffID, let id = byDiff[diff]?.first(where: { !taken.contains($0) }) else { continue }
            taken.insert(id)
            assigned[chain] = id
        }
        for chain in snapshotOrder where assigned[chain] == nil {
            guard let place = places[chain],
                  let slot = earlier.first(where: { $0.layerIndex == place.layerIndex && !$0.names.isDisjoint(with: place.names) && !taken.contains($0.id) })
            else { continue }
            taken.insert(slot.id)
            assigned[chain] = slot.id
        }
        var next = (earlier.map(\.id).max() ?? 0) + 1
        for chain in snapshotOrder {
            let id: UInt64
            if let kept = assigned[chain] {
                id = kept
            } else {
                id = next
                next += 1
            }
            snapshots[chain]?.id = id
            snapshots[chain]?.sequence = id
        }
        return taken
    }

    /// The bucket sequence both databases record: at least every snapshot number in use.
    var snapshotSequence: UInt64 { snapshots.values.map(\.id).max() ?? 0 }
}
