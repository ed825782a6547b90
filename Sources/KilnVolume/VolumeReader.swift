import Foundation
import KilnContainerd
import KilnExt4

/// Reads a baked volume without mounting it: partition table, filesystem, containerd databases.
public struct VolumeReader {
    public let path: String
    /// Where the filesystem starts (1 MiB on a Bottlerocket data disk, 0 for a bare filesystem).
    public let filesystemOffset: UInt64
    public let partitionName: String?
    public let filesystem: EXT4Reader

    public enum Error: Swift.Error, CustomStringConvertible {
        case unreadable(String, String)
        case noFilesystem(String)

        public var description: String {
            switch self {
            case .unreadable(let p, let why): return "\(p): \(why)"
            case .noFilesystem(let p): return "\(p): no ext4 filesystem found (neither at byte 0 nor in the first GPT partition)"
            }
        }
    }

    public init(path: String) throws {
        self.path = path
        guard let fh = FileHandle(forReadingAtPath: path) else { throw Error.unreadable(path, "cannot open") }
        defer { try? fh.close() }
        let head = (try? fh.read(upToCount: 2048)).map(Array.init) ?? []
        var offset: UInt64 = 0
        var name: String? = nil
        if head.count >= 1024, Array(head[512..<520]) == Array("EFI PART".utf8) {
            // First partition entry: LBA of the entry array at header offset 72.
            let entriesLBA = head[512 + 72..<512 + 80].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            try? fh.seek(toOffset: entriesLBA * 512)
            let entry = (try? fh.read(upToCount: 128)).map(Array.init) ?? []
            if entry.count == 128 {
                offset = entry[32..<40].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } * 512
                var units: [UInt16] = []
                for i in stride(from: 56, to: 128, by: 2) {
                    let u = UInt16(entry[i]) | UInt16(entry[i + 1]) << 8
                    if u == 0 { break }
                    units.append(u)
                }
                name = String(decoding: units, as: UTF16.self)
            }
        }
        filesystemOffset = offset
        partitionName = name
        do { filesystem = try EXT4Reader(path: path, offset: offset) } catch { throw Error.noFilesystem(path) }
    }

    /// The containerd databases under `root` (default `var/lib/containerd`), or nil when there is no containerd root.
    public func containerd(root: String = Bake.containerdRoot) throws -> ContainerdInventory? {
        let metaPath = "/\(root)/\(ContainerdRoot.Paths.metaDB)"
        guard (try? filesystem.stat(metaPath)) != nil else { return nil }
        let meta = Data(try filesystem.readFile(metaPath))
        let snapPath = "/\(root)/\(ContainerdRoot.Paths.snapshotterDB)"
        let snap = (try? filesystem.stat(snapPath)) != nil ? Data(try filesystem.readFile(snapPath)) : nil
        return try ContainerdInventory(metaDB: meta, snapshotterDB: snap)
    }
}
