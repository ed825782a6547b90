import KilnCore
import KilnExt4

/// The partition table and filesystem basics of an image file, read from a few sectors: the GPT (through
/// ``GPT/read(_:)``) and the ext-family superblock at the first partition's start, or at byte 0 of a bare
/// filesystem (through ``EXT4Reader/Info/init(superblock:)``).
public struct VolumeProbe: Sendable, Hashable, Codable {
    /// The first used GPT partition, with its GUIDs in canonical text form.
    public struct Partition: Sendable, Hashable, Codable {
        public var number: Int
        public var start: UInt64
        public var size: UInt64
        public var typeGUID: String
        public var uniqueGUID: String
        public var name: String
        public var diskGUID: String?
    }

    /// The filesystem found.
    public struct Filesystem: Sendable, Hashable, Codable {
        /// `ext4`, `ext3` or `ext2`.
        public var type: String
        public var offset: UInt64
        public var uuid: String
        public var label: String
        public var blockSize: Int
        public var blockCount: UInt64
        public var inodeCount: UInt64
        public var usedBlocks: UInt64
        public var usedInodes: UInt64?
    }

    /// A byte range of the image.
    public struct ByteRange: Sendable, Hashable, Codable {
        public var offset: UInt64
        public var length: UInt64
    }

    /// The image file's size.
    public var size: UInt64
    /// `gpt` when the image has a GPT, else nil.
    public var partitionTable: String?
    /// The first used GPT partition.
    public var partition: Partition?
    /// Partitions in use in the GPT.
    public var partitionCount: Int
    /// The filesystem at the partition's start, or at byte 0 without a partition table.
    public var filesystem: Filesystem?
    /// Byte ranges of the partition tables (protective MBR, primary and backup GPT).
    public var partitionTableRanges: [ByteRange]
    /// What is wrong with the copy of the GPT that was not used: a damaged primary (the backup was read), or a
    /// damaged or misplaced backup. Nil when both check out.
    public var partitionTableProblem: String?

    /// What the layout looks like from outside: `bottlerocket` (GPT whose first partition has Bottlerocket's
    /// data partition type), `gpt`, `ext4` (a bare filesystem) or `unknown`.
    public var layout: String {
        if let p = partition {
            return p.typeGUID == GPT.bottlerocketDataType.description ? "bottlerocket" : "gpt"
        }
        return filesystem?.type ?? "unknown"
    }

    /// Why an image cannot be probed.
    public enum Error: KilnError {
        case io(String)
        case damaged(path: String, GPT.ReadError)

        public var exitStatus: ExitStatus {
            switch self {
            case .io: return .environment
            case .damaged(_, let e): return e.exitStatus
            }
        }

        public var description: String {
            switch self {
            case .io(let why): return why
            case .damaged(let path, let e): return "\(path): \(e)"
            }
        }
    }

    /// Reads the basics of the image at `path`. Contents that hold no GPT and no superblock give a probe
    /// without partition or filesystem; a GPT signature whose tables do not check out, and I/O failures, throw.
    public init(path: String) throws(Error) {
        let file: ImageFile
        do { file = try ImageFile(path: path) } catch { throw .io("\(error)") }
        size = file.size
        partitionCount = 0
        partitionTableRanges = []
        var fsOffset: UInt64 = 0
        let table: GPT.Table?
        do { table = try GPT.read(file) } catch { throw .damaged(path: path, error) }
        if let table {
            partitionTable = "gpt"
            partitionCount = table.partitions.count
            partitionTableProblem = table.otherCopyProblem
            // The reader checked that the table's header and array lie outside the usable LBAs: the primary's
            // in front of them, the backup's behind. The copy not read is where the tools put it, cut to the
            // same side of the usable LBAs, so no range here ever covers a partition.
            let sector = table.sectorSize
            let arrayEnd = table.entriesLBA * sector + table.entryBytes
            let firstUsable = table.firstUsableLBA * sector
            let pastUsable = (table.lastUsableLBA + 1) * sector
            let primaryEnd = table.fromBackup ? min(2 * sector + table.entryBytes, firstUsable) : arrayEnd
            partitionTableRanges = [ByteRange(offset: 0, length: primaryEnd)]
            let backupStart = table.fromBackup ? table.entriesLBA * sector : max(pastUsable, size >= sector + table.entryBytes ? size - sector - table.entryBytes : 0)
            partitionTableRanges.append(ByteRange(offset: backupStart, length: size - backupStart))
            if let first = table.partitions.first {
                partition = Partition(
                    number: first.number, start: first.firstLBA * sector, size: (first.lastLBA - first.firstLBA + 1) * sector,
                    typeGUID: first.type.description, uniqueGUID: first.unique.description, name: first.name,
                    diskGUID: table.diskGUID.description)
                fsOffset = first.firstLBA * sector
            }
        }
        if fsOffset <= size, size - fsOffset >= 2048 {
            let raw: [UInt8]
            do { raw = try file.bytes(at: fsOffset + 1024, count: 1024) } catch { throw .io("\(error)") }
            if let info = EXT4Reader.Info(superblock: raw) {
                filesystem = Filesystem(
                    type: info.generation, offset: fsOffset, uuid: info.uuid, label: info.volumeName,
                    blockSize: info.blockSize, blockCount: info.blockCount, inodeCount: UInt64(info.inodeCount),
                    usedBlocks: info.blockCount >= info.freeBlocks ? info.blockCount - info.freeBlocks : 0,
                    usedInodes: UInt64(info.inodeCount >= info.freeInodes ? info.inodeCount - info.freeInodes : 0))
            }
        }
    }
}
