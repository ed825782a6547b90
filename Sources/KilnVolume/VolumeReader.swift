import Foundation
import KilnContainerd
import KilnCore
import KilnDisk
import KilnExt4
import KilnManifest

/// Reads a baked volume without mounting it: partition table, filesystem, containerd databases.
public struct VolumeReader {
    public let path: String
    /// Where the filesystem starts (1 MiB on a Bottlerocket data disk, 0 for a bare filesystem).
    public let filesystemOffset: UInt64
    public let partitionName: String?
    public let filesystem: EXT4Reader

    public enum Error: KilnError {
        /// The image cannot be probed: the cause says whether it is damaged or unreadable.
        case unreadable(String, any Swift.Error)
        case noFilesystem(String)

        public var exitStatus: ExitStatus {
            switch self {
            case .unreadable(_, let cause): return ExitStatus.of(cause)
            case .noFilesystem: return .input
            }
        }

        public var description: String {
            switch self {
            case .unreadable(_, let why): return "\(why)"
            case .noFilesystem(let p): return "\(p): no ext4 filesystem found (neither at byte 0 nor in the first GPT partition)"
            }
        }
    }

    public init(path: String) throws {
        self.path = path
        // The partition table is read by the disk module's probe; the filesystem starts at the first
        // partition, or at byte 0 for a bare filesystem.
        let probe: VolumeProbe
        do { probe = try VolumeProbe(path: path) } catch { throw Error.unreadable(path, error) }
        filesystemOffset = probe.partition?.start ?? 0
        partitionName = probe.partition?.name
        do {
            filesystem = try EXT4Reader(path: path, offset: filesystemOffset)
        } catch let error as EXT4Reader.Error {
            // Not ext4 at all, or an ext4 superblock whose counts the image cannot hold: say which.
            if case .corrupt = error { throw Error.unreadable(path, error) }
            throw Error.noFilesystem(path)
        } catch {
            throw Error.noFilesystem(path)
        }
    }

    /// The containerd databases under `root` (default `var/lib/containerd`), or nil when there is no containerd root.
    public func containerd(root: String = Bake.containerdRoot) throws -> ContainerdInventory? {
        let metaPath = "/\(root)/\(ContainerdRoot.Paths.metaDB)"
        guard (try? filesystem.stat(metaPath)) != nil else { return nil }
        let meta = try database(metaPath)
        let snapPath = "/\(root)/\(ContainerdRoot.Paths.snapshotterDB)"
        let snap = (try? filesystem.stat(snapPath)) != nil ? try database(snapPath) : nil
        return try ContainerdInventory(metaDB: meta, snapshotterDB: snap)
    }

    /// The largest containerd database read into memory (a node's meta.db holds megabytes).
    public static let databaseLimit: UInt64 = 1 << 30

    /// A database's bytes, after its size (untrusted, like everything in the image) is checked.
    func database(_ path: String) throws -> Data {
        let size = try filesystem.stat(path, followSymlinks: true).size
        guard size <= Self.databaseLimit else {
            throw Error.unreadable(self.path, EXT4Reader.Error.corrupt("\(path) claims \(size) bytes; containerd databases over \(Self.databaseLimit) bytes are not read"))
        }
        return Data(try filesystem.readFile(path))
    }
}
