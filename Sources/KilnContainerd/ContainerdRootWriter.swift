import Foundation
import KilnCore
import KilnDigest
import KilnExt4

/// Writes a ``ContainerdRoot`` into an ext4 filesystem as containerd 1.6 leaves it after a pull and unpack:
/// the directory skeleton with containerd's modes, the content store's blobs, one directory per snapshot, and
/// both databases.
///
/// The caller unpacks each layer into the directory ``makeSnapshotDirectory(_:)`` returns, and hands each kept
/// layer blob's stored bytes to the ``BlobCopy`` from ``placeLayerBlob(_:)`` while the layer streams, so a blob
/// is read once. ``finish()`` writes the JSON blobs and the databases.
public final class ContainerdRootWriter {
    /// The containerd root inside the filesystem: Bottlerocket mounts the data partition at /local and
    /// bind-mounts /local/var at /var, so containerd's root is `var/lib/containerd` there.
    public static let rootPath = "var/lib/containerd"

    /// Why the root cannot be written; the exit status is the filesystem writer's.
    public enum Error: KilnError {
        case write(path: String, any Swift.Error)
        case blobCopy(path: String, any Swift.Error)
        case blobShort(path: String, received: UInt64, size: UInt64)
        case notPlaced(path: String, Digest)
        case databases(any Swift.Error)

        public var exitStatus: ExitStatus {
            switch self {
            case .write(_, let e): return ExitStatus.of(e)
            case .blobCopy(_, let e): return ExitStatus.of(e)
            case .blobShort, .notPlaced: return .environment
            case .databases(let e): return ExitStatus.of(e)
            }
        }

        /// The filesystem writer's error when the filesystem is full (the volume size is too small).
        public var doesNotFit: EXT4Writer.Error? {
            if case .write(_, let e) = self, let w = e as? EXT4Writer.Error, case .doesNotFit = w { return w }
            return nil
        }

        public var description: String {
            switch self {
            case .write(let path, let e): return "\(path): \(e)"
            case .blobCopy(let path, let e): return "\(path): \(e)"
            case .blobShort(let path, let received, let size): return "\(path): received \(received) of \(size) bytes while copying the blob"
            case .notPlaced(let path, let d): return "\(path): layer blob \(d) was not placed in the content store"
            case .databases(let e): return "cannot build containerd's databases: \(e)"
            }
        }
    }

    public private(set) var model: ContainerdRoot
    private let writer: EXT4Writer
    private let root: EXT4.NodeID
    private let time: EXT4.Timestamp
    private var placed: Set<Digest> = []

    /// Creates the skeleton: `var/lib/containerd` (0700, as containerd 1.6 sets it at every start), the content
    /// store (0755), the metadata plugin's directory (0711) and the snapshotter's (0700).
    public init(model: ContainerdRoot, into writer: EXT4Writer, time: EXT4.Timestamp) throws(Error) {
        self.model = model
        self.writer = writer
        self.time = time
        func dir(_ path: String, _ mode: UInt16, under parent: EXT4.NodeID = .root) throws(Error) -> EXT4.NodeID {
            do {
                return try writer.makeDirectory(BytePath(path), metadata: EXT4.Metadata(permissions: mode, time: time), under: parent)
            } catch {
                throw .write(path: path, error)
            }
        }
        _ = try dir("var", 0o755)
        _ = try dir("var/lib", 0o755)
        let root = try dir(Self.rootPath, 0o700)
        self.root = root
        for (path, mode) in [
            (ContainerdRoot.Paths.content, 0o755), ("\(ContainerdRoot.Paths.content)/blobs", 0o755),
            (ContainerdRoot.Paths.blobs, 0o755), (ContainerdRoot.Paths.ingest, 0o755),
            (ContainerdRoot.Paths.metadata, 0o711), (ContainerdRoot.Paths.overlayfs, 0o700),
            (ContainerdRoot.Paths.snapshots, 0o700),
        ] as [(String, UInt16)] {
            _ = try dir(path, mode, under: root)
        }
    }

    /// Creates `snapshots/<id>` (0700) and its `fs` (0755), and returns `fs`, where the layer is unpacked.
    public func makeSnapshotDirectory(_ snapshot: ContainerdRoot.Snapshot) throws(Error) -> EXT4.NodeID {
        let outer = "\(ContainerdRoot.Paths.snapshots)/\(snapshot.id)"
        let fs = ContainerdRoot.Paths.snapshotFS(snapshot.id)
        do {
            _ = try writer.makeDirectory(BytePath(outer), metadata: EXT4.Metadata(permissions: 0o700, time: time), under: root)
            return try writer.makeDirectory(BytePath(fs), metadata: EXT4.Metadata(permissions: 0o755, time: time), under: root)
        } catch {
            throw .write(path: fs, error)
        }
    }

    /// Reserves the content-store file of a layer blob the store keeps and has not placed yet, or nil (the blob
    /// is left out, already placed, or has no known size).
    public func placeLayerBlob(_ digest: Digest) throws(Error) -> BlobCopy? {
        guard !placed.contains(digest), let blob = model.blobs[digest], blob.bytes == nil,
              let location = blob.location, location.length == blob.size, blob.size >= 0 else { return nil }
        let path = ContainerdRoot.Paths.blob(digest)
        do {
            let file = try writer.reserveFile(BytePath(path), size: UInt64(blob.size), metadata: Self.blobMetadata(time), under: root)
            placed.insert(digest)
            return BlobCopy(file: file)
        } catch {
            throw .write(path: path, error)
        }
    }

    /// Records what unpacking a snapshot used (the snapshotter's database stores it).
    public func recordUsage(_ chainID: Digest, inodes: Int64, size: Int64) {
        model.setUsage(chainID, inodes: inodes, size: size)
    }

    /// Writes the remaining blobs (the JSON documents) in digest order, so the same inputs lay out the same
    /// way, then `meta.db` (0644) and the snapshotter's `metadata.db` (0600).
    public func finish() throws(Error) {
        for blob in model.blobs.values.sorted(by: { $0.digest < $1.digest }) where !placed.contains(blob.digest) {
            let path = ContainerdRoot.Paths.blob(blob.digest)
            if let bytes = blob.bytes {
                try write(path, bytes, mode: 0o444)
            } else if blob.location != nil {
                // A kept layer blob that was not placed while its layer was read would leave containerd a
                // manifest whose layer is missing.
                throw .notPlaced(path: path, blob.digest)
            }
        }
        let metaDB: Data
        let snapshotterDB: Data
        do {
            metaDB = try model.metaDB()
            snapshotterDB = try model.snapshotterDB()
        } catch {
            throw .databases(error)
        }
        try write(ContainerdRoot.Paths.metaDB, Array(metaDB), mode: 0o644)
        try write(ContainerdRoot.Paths.snapshotterDB, Array(snapshotterDB), mode: 0o600)
    }

    private func write(_ path: String, _ bytes: [UInt8], mode: UInt16) throws(Error) {
        do {
            try writer.writeFile(BytePath(path), contents: bytes, metadata: EXT4.Metadata(permissions: mode, time: time), under: root)
        } catch {
            throw .write(path: path, error)
        }
    }

    static func blobMetadata(_ time: EXT4.Timestamp) -> EXT4.Metadata { EXT4.Metadata(permissions: 0o444, time: time) }
}

/// Places a layer blob's stored bytes into its reserved content-store file as the layer streams.
///
/// ``receive(_:)`` is called on the layer's reading thread; ``finish()`` only after the scan has finished.
public final class BlobCopy: @unchecked Sendable {
    let file: EXT4ReservedFile
    /// Stored bytes received, including any beyond the reserved size.
    private(set) var received: UInt64 = 0
    private(set) var failure: (any Swift.Error)?

    init(file: EXT4ReservedFile) {
        self.file = file
    }

    /// Writes the next stored bytes; bytes beyond the reserved size make the layer's size differ from its
    /// descriptor, which the layer's scan reports.
    public func receive(_ bytes: UnsafeRawBufferPointer) {
        defer { received += UInt64(bytes.count) }
        guard failure == nil, received < file.size else { return }
        let n = Int(min(UInt64(bytes.count), file.size - received))
        do { try file.write(UnsafeRawBufferPointer(rebasing: bytes[0..<n]), at: received) } catch { failure = error }
    }

    /// Throws when the copy could not be written (the scan itself has already vouched for the bytes).
    public func finish() throws(ContainerdRootWriter.Error) {
        if let failure { throw .blobCopy(path: file.path.description, failure) }
        guard received == file.size else { throw .blobShort(path: file.path.description, received: received, size: file.size) }
    }
}
