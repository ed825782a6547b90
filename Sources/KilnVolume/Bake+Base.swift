import Foundation
import KilnContainerd
import KilnCore
import KilnDigest
import KilnExt4
import KilnManifest
import KilnOCI

/// A previous bake whose places a new bake keeps (`kiln bake --base`): its manifest, the placement record and
/// block digests beside it. The old image itself is not needed: CI runners are ephemeral.
///
/// It is read whole before the new bake removes anything, so the base may be the output directory itself.
public struct BakeBase: Sendable {
    public var manifestPath: String
    public var manifest: SnapshotManifest
    /// sha256 of the base's `manifest.json` bytes.
    public var manifestDigest: Digest
    public var placement: EXT4.Placement
    /// The base's written blocks, ascending.
    public var blocks: [BlockDigest]

    /// The longest placement record a base may have, 4 GiB: a million files record about 50 MB.
    public static let maximumPlacementSize: UInt64 = 4 << 30

    /// Reads the base at `path`: a bake's output directory or its `manifest.json`.
    public static func load(_ path: String) throws(Bake.Error) -> BakeBase {
        var isDirectory: ObjCBool = false
        let manifestPath: String
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            manifestPath = (path as NSString).appendingPathComponent(SnapshotManifest.fileName)
        } else {
            manifestPath = path
        }
        func refuse(_ why: String) -> Bake.Error { .input("base '\(manifestPath)': \(why)") }
        let manifest: SnapshotManifest
        let data: [UInt8]
        do { (manifest, data) = try SnapshotManifest.loadWithBytes(path: manifestPath) } catch SnapshotManifest.Error.missing {
            throw refuse("there is no manifest there (give a bake's output directory or its manifest.json)")
        } catch { throw refuse("\(error)") }
        let directory = (manifestPath as NSString).deletingLastPathComponent
        guard let reference = manifest.placement else {
            throw refuse("the manifest records no filesystem placement (manifest.layout): it was baked by a kiln without incremental bakes; bake it again to use it as a base")
        }
        let placementPath = (directory as NSString).appendingPathComponent(reference.file)
        guard reference.format == ManifestWriter.placementFormat else {
            throw refuse("its placement record has format '\(reference.format)'; this kiln reads \(ManifestWriter.placementFormat)")
        }
        let bytes: [UInt8]
        do {
            let file = try InputFile(path: placementPath, followSymlink: false)
            // The manifest records the record's length: a file of another length is not it, whatever it holds.
            guard file.length == reference.size else {
                throw refuse("'\(placementPath)' is \(file.length) bytes, the manifest records \(reference.size)")
            }
            bytes = try file.readAll(limit: Self.maximumPlacementSize)
        } catch let failure as InputFile.Failure {
            switch failure {
            case .missing: throw refuse("its placement record '\(placementPath)' is missing (keep manifest.layout beside manifest.json)")
            case .unreadable, .changed: throw Bake.Error.io("the placement record '\(placementPath)' \(failure)")
            default: throw refuse("its placement record '\(placementPath)' \(failure)")
            }
        } catch let error as Bake.Error { throw error } catch { throw refuse("\(error)") }
        let digest = bytes.withUnsafeBytes { Digest(sha256: SHA256Hasher.hashBytes($0)) }
        guard digest == reference.digest else {
            throw refuse("'\(placementPath)' has sha256 \(digest), the manifest records \(reference.digest)")
        }
        let placement: EXT4.Placement
        do { placement = try EXT4.Placement(decoding: Array(bytes)) } catch { throw refuse("'\(placementPath)': \(error)") }
        let sidecarPath = manifest.sidecarPath(manifestPath: manifestPath)
        let loaded: BlockDigestFile.Loaded
        do { loaded = try BlockDigestFile.load(path: sidecarPath) } catch { throw refuse("\(error)") }
        guard loaded.digest == manifest.blockDigests.digest else {
            throw refuse("'\(sidecarPath)' has sha256 \(loaded.digest), the manifest records \(manifest.blockDigests.digest)")
        }
        guard let fs = manifest.volume.filesystem, fs.blockCount == placement.blockCount,
              fs.uuid.replacingOccurrences(of: "-", with: "") == placement.uuid.map({ String(format: "%02x", $0) }).joined()
        else {
            throw refuse("its placement record does not describe the filesystem its manifest records")
        }
        return BakeBase(manifestPath: manifestPath, manifest: manifest, manifestDigest: SHA256Hasher.hash(data),
                        placement: placement, blocks: loaded.file.entries)
    }

    /// Why this base cannot be kept by a bake of `recipe` with these images, or nil when it can.
    func mismatch(recipe: Recipe, images: [ResolvedImage], partitioned: Bool) -> String? {
        guard manifest.volume.layout == recipe.layout.rawValue else {
            return "it is a \(manifest.volume.layout) volume; this bake makes a \(recipe.layout.rawValue) volume"
        }
        let offset: UInt64 = partitioned ? Bake.partitionStart : 0
        guard manifest.volume.filesystem?.offset == offset else {
            return "its filesystem starts at byte \(manifest.volume.filesystem?.offset ?? 0), this layout's at \(offset)"
        }
        let old = Set(manifest.images.map(\.platform))
        let new = Set(images.map(\.platform.description))
        guard old == new else {
            return "it holds images for \(old.sorted().joined(separator: ", ")); this bake is for \(new.sorted().joined(separator: ", "))"
        }
        if case .bytes(let n) = recipe.size {
            let reserve: UInt64 = partitioned ? 2 * Bake.partitionStart : 0
            let blocks = EXT4Writer.fixedBlockCount((n > reserve ? n - reserve : 0) / UInt64(EXT4.blockSize))
            guard blocks == placement.blockCount else {
                return "its filesystem has \(placement.blockCount) blocks; volume.size \(n) gives \(blocks): the geometry cannot be kept (use size auto, or the base's size)"
            }
        }
        return nil
    }

    /// The snapshots the base holds (containerd layouts).
    var snapshotSlots: [ContainerdRoot.SnapshotSlot] {
        var out: [ContainerdRoot.SnapshotSlot] = []
        for image in manifest.images {
            for (i, layer) in image.layers.enumerated() {
                guard let text = layer.snapshotId, let id = UInt64(text) else { continue }
                out.append(ContainerdRoot.SnapshotSlot(chainID: layer.chainID, diffID: layer.diffID, id: id, names: Set(image.names), layerIndex: i))
            }
        }
        return out
    }

    /// The base inodes a bake may find again: everything but the snapshots it no longer has and the content
    /// blobs it no longer stores (containerd layouts); everything in a rootfs.
    func keptInodes(snapshots: Set<UInt64>?, blobs: Set<Digest>?) -> Set<UInt32> {
        // Only the first components decide (a snapshot's number, a blob's name): prefixes are enough.
        let paths = placement.pathsByInode(limit: 512)
        guard let snapshots, let blobs else { return Set(paths.keys) }
        let snapshotsPrefix = Array("/\(Bake.containerdRoot)/\(ContainerdRoot.Paths.snapshots)/".utf8)
        let blobsPrefix = Array("/\(Bake.containerdRoot)/\(ContainerdRoot.Paths.blobs)/".utf8)
        let keptSnapshots = Set(snapshots.map { Array(String($0).utf8) })
        let keptBlobs = Set(blobs.map { Array($0.encoded.utf8) })
        var keep = Set<UInt32>()
        for (ino, path) in paths {
            let bytes = path.bytes
            if bytes.starts(with: snapshotsPrefix) {
                let rest = bytes.dropFirst(snapshotsPrefix.count)
                let id = Array(rest.prefix { $0 != BytePath.slash })
                guard keptSnapshots.contains(id) else { continue }
            } else if bytes.starts(with: blobsPrefix) {
                guard keptBlobs.contains(Array(bytes.dropFirst(blobsPrefix.count))) else { continue }
            }
            keep.insert(ino)
        }
        return keep
    }
}
