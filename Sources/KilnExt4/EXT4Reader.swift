/// Reads an ext4 filesystem from a file at a byte offset: superblock, group descriptors, inodes, directories
/// (linear and htree), regular file contents through extent trees of any depth, symlinks and xattrs.
///
/// It reads what kiln writes and what `mke2fs` makes with default ext4 features (extents, 64-bit descriptors,
/// meta_bg or the classic descriptor table); block-mapped (ext2/ext3) files and inline data are refused.
///
/// A reader can be shared between tasks: its state is fixed after `init` and every read is a positioned
/// `pread`.
public final class EXT4Reader: @unchecked Sendable {
    /// Errors raised by the reader; each names the path or structure involved.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case cannotOpen(path: String, errno: Int32)
        case io(operation: String, path: String, errno: Int32)
        case notExt4(path: String)
        case unsupported(String)
        case notFound(path: String)
        case notADirectory(path: String)
        case notARegularFile(path: String)
        case notASymlink(path: String)
        case symlinkLoop(path: String)
        case corrupt(String)

        public var description: String {
            switch self {
            case .cannotOpen(let p, let e): return "cannot open image '\(p)' (errno \(e))"
            case .io(let op, let p, let e): return "\(op) failed on image '\(p)' (errno \(e))"
            case .notExt4(let p): return "'\(p)' does not hold an ext4 superblock at the given offset"
            case .unsupported(let s): return "unsupported ext4 layout: \(s)"
            case .notFound(let p): return "'\(p)' does not exist in the filesystem"
            case .notADirectory(let p): return "'\(p)' is not a directory"
            case .notARegularFile(let p): return "'\(p)' is not a regular file"
            case .notASymlink(let p): return "'\(p)' is not a symbolic link"
            case .symlinkLoop(let p): return "too many symbolic links resolving '\(p)'"
            case .corrupt(let s): return "corrupt filesystem: \(s)"
            }
        }
    }

    /// Filesystem-wide facts from the superblock.
    public struct Info: Sendable, Hashable {
        public var blockSize: Int
        public var blockCount: UInt64
        public var freeBlocks: UInt64
        public var inodeCount: UInt32
        public var freeInodes: UInt32
        public var inodesPerGroup: UInt32
        public var groupCount: UInt64
        public var uuid: String
        public var volumeName: String
        public var featureCompat: UInt32
        public var featureIncompat: UInt32
        public var featureROCompat: UInt32
    }

    /// stat-like metadata of one inode.
    public struct Stat: Sendable, Hashable {
        public var inode: UInt32
        public var kind: EXT4.FileKind
        /// The permission bits (including setuid/setgid/sticky).
        public var permissions: UInt16
        public var uid: UInt32
        public var gid: UInt32
        public var size: UInt64
        public var linkCount: Int
        public var accessTime: EXT4.Timestamp
        public var modificationTime: EXT4.Timestamp
        public var changeTime: EXT4.Timestamp
        public var creationTime: EXT4.Timestamp
        /// 512-byte sectors allocated (data, tree and xattr blocks).
        public var sectors: UInt64
        public var flags: UInt32
        public var device: EXT4.DeviceNumber?
    }

    /// One directory entry.
    public struct DirectoryEntry: Sendable, Hashable {
        public var name: String
        public var nameBytes: [UInt8]
        public var inode: UInt32
        public var kind: EXT4.FileKind?
    }

    let file: EXT4.ImageFile
    let sb: EXT4.Superblock
    let descriptors: [EXT4.GroupDescriptor]
    let checksumSeed: UInt32?
    let blockSize: Int

    /// The superblock's facts.
    public let info: Info

    /// Opens the filesystem in `path` starting `offset` bytes into the file.
    public init(path: String, offset: UInt64 = 0) throws {
        do {
            file = try EXT4.ImageFile(path: path, offset: offset, writable: false)
            let raw = try file.read(atByte: 1024, count: 1024)
            sb = EXT4.Superblock.decode(raw)
            guard let facts = Info(sb) else { throw Error.notExt4(path: path) }
            if sb.featureIncompat & EXT4.Incompat.inlineData != 0 { throw Error.unsupported("inline_data") }
            if sb.featureIncompat & (EXT4.Incompat.encrypt | EXT4.Incompat.casefold) != 0 {
                throw Error.unsupported("encryption or casefold")
            }
            blockSize = sb.blockSize
            checksumSeed = sb.hasMetadataChecksums ? sb.checksumSeed : nil
            let groups = sb.groupCount
            let descSize = Int(sb.is64Bit ? sb.descriptorSize : 32)
            // The superblock is untrusted: every count that sizes work or memory below is checked against the
            // image first, so a damaged one is refused instead of read for ever.
            guard descSize >= 32, descSize <= 1024, descSize & (descSize - 1) == 0, descSize <= blockSize else {
                throw Error.corrupt("group descriptor size \(descSize) is not a power of two from 32 to 1024")
            }
            let available = file.byteSize > offset ? file.byteSize - offset : 0
            let (bytes, overflow) = sb.blocksCount.multipliedReportingOverflow(by: UInt64(blockSize))
            guard !overflow, bytes <= available else {
                throw Error.corrupt("the superblock says \(sb.blocksCount) blocks of \(blockSize) bytes; the image holds \(available) bytes from byte \(offset)")
            }
            guard sb.inodeSize >= 128, Int(sb.inodeSize) <= blockSize, sb.inodeSize & (sb.inodeSize - 1) == 0 else {
                throw Error.corrupt("inode size \(sb.inodeSize) is not a power of two from 128 to the block size")
            }
            let (inodeCapacity, pastUInt64) = UInt64(sb.inodesPerGroup).multipliedReportingOverflow(by: groups)
            guard groups > 0, pastUInt64 || inodeCapacity >= UInt64(sb.inodesCount), groups <= sb.blocksCount else {
                throw Error.corrupt("\(groups) block groups of \(sb.inodesPerGroup) inodes do not fit \(sb.inodesCount) inodes in \(sb.blocksCount) blocks")
            }
            let perBlock = UInt64(blockSize / descSize)
            var ds: [EXT4.GroupDescriptor] = []
            var i: UInt64 = 0
            while i * perBlock < groups {
                let loc = EXT4.descriptorBlockLocation(descriptorBlock: i, superblock: sb)
                let block = try file.read(atByte: loc * UInt64(blockSize), count: blockSize)
                for k in 0..<Int(min(perBlock, groups - i * perBlock)) {
                    ds.append(EXT4.GroupDescriptor.decode(block[(k * descSize)..<((k + 1) * descSize)], size: descSize))
                }
                i += 1
            }
            descriptors = ds
            info = facts
        } catch EXT4.ImageFile.Failure.open(let p, let e) {
            throw Error.cannotOpen(path: p, errno: e)
        } catch EXT4.ImageFile.Failure.io(let op, let p, let e) {
            throw Error.io(operation: op, path: p, errno: e)
        }
    }

    deinit { file.close() }

    func readBlock(_ block: UInt64) throws -> [UInt8] {
        guard block < info.blockCount else {
            throw Error.corrupt("block \(block) is beyond the filesystem's \(info.blockCount) blocks")
        }
        do {
            return try file.read(atByte: block * UInt64(blockSize), count: blockSize)
        } catch EXT4.ImageFile.Failure.io(let op, let p, let e) {
            throw Error.io(operation: op, path: p, errno: e)
        }
    }

    /// The raw inode and whether its checksum is right.
    func inode(_ ino: UInt32) throws -> (EXT4.InodeImage, checksumOK: Bool) {
        guard ino >= 1, ino <= sb.inodesCount else { throw Error.corrupt("inode \(ino) out of range") }
        let group = Int((ino - 1) / sb.inodesPerGroup)
        let index = UInt64((ino - 1) % sb.inodesPerGroup)
        guard group < descriptors.count else { throw Error.corrupt("inode \(ino) beyond the group descriptors") }
        let isize = UInt64(sb.inodeSize)
        let table = descriptors[group].inodeTable
        guard table < info.blockCount, (info.blockCount - table) * UInt64(blockSize) >= (index + 1) * isize else {
            throw Error.corrupt("group \(group)'s inode table at block \(table) lies beyond the filesystem")
        }
        let byte = table * UInt64(blockSize) + index * isize
        let raw: [UInt8]
        do {
            raw = try file.read(atByte: byte, count: Int(isize))
        } catch EXT4.ImageFile.Failure.io(let op, let p, let e) {
            throw Error.io(operation: op, path: p, errno: e)
        }
        return EXT4.InodeImage.decode(raw, inode: ino, checksumSeed: checksumSeed)
    }

    /// Metadata of inode `ino`.
    public func stat(inode ino: UInt32) throws -> Stat {
        let (i, _) = try inode(ino)
        guard let kind = EXT4.FileKind(mode: i.mode) else { throw Error.corrupt("inode \(ino) has mode \(String(i.mode, radix: 8))") }
        var device: EXT4.DeviceNumber?
        if kind == .characterDevice || kind == .blockDevice {
            let old = i.blockArea.le32(at: 0)
            if old != 0 {
                device = EXT4.DeviceNumber(major: (old >> 8) & 0xFF, minor: old & 0xFF)
            } else {
                let new = i.blockArea.le32(at: 4)
                device = EXT4.DeviceNumber(major: (new & 0xFFF00) >> 8, minor: (new & 0xFF) | ((new >> 12) & 0xFFF00))
            }
        }
        return Stat(
            inode: ino, kind: kind, permissions: i.mode & 0o7777, uid: i.uid, gid: i.gid, size: i.size,
            linkCount: Int(i.linksCount), accessTime: i.accessTime, modificationTime: i.modificationTime,
            changeTime: i.changeTime, creationTime: i.creationTime, sectors: i.sectors, flags: i.flags, device: device)
    }

    /// Whether inode `ino`'s checksum verifies (always true without metadata_csum).
    public func inodeChecksumIsValid(_ ino: UInt32) throws -> Bool { try inode(ino).checksumOK }
}

extension EXT4Reader.Info {
    /// `ext4` (extents), `ext3` (a journal) or `ext2`, as blkid names the generation.
    public var generation: String {
        if featureIncompat & EXT4.Incompat.extents != 0 { return "ext4" }
        return featureCompat & EXT4.Compat.hasJournal != 0 ? "ext3" : "ext2"
    }

    /// The facts of an ext2/3/4 superblock (the 1024 bytes at byte 1024 of the filesystem), or nil when
    /// the bytes are not one: wrong magic, a block size beyond 64 KiB, or zero blocks or inodes per group.
    public init?(superblock raw: [UInt8]) {
        guard raw.count >= 1024 else { return nil }
        self.init(EXT4.Superblock.decode(raw))
    }

    init?(_ sb: EXT4.Superblock) {
        guard sb.magic == EXT4.superblockMagic, sb.logBlockSize <= 6, sb.blocksPerGroup > 0, sb.inodesPerGroup > 0 else {
            return nil
        }
        let u = sb.uuid.map { String(Int($0) + 0x100, radix: 16).dropFirst() }.joined()
        let uuid = [u.prefix(8), u.dropFirst(8).prefix(4), u.dropFirst(12).prefix(4), u.dropFirst(16).prefix(4), u.dropFirst(20)]
            .joined(separator: "-")
        self.init(
            blockSize: sb.blockSize, blockCount: sb.blocksCount, freeBlocks: sb.freeBlocksCount,
            inodeCount: sb.inodesCount, freeInodes: sb.freeInodesCount, inodesPerGroup: sb.inodesPerGroup,
            groupCount: sb.groupCount, uuid: uuid,
            volumeName: String(decoding: sb.volumeName.prefix { $0 != 0 }, as: UTF8.self),
            featureCompat: sb.featureCompat, featureIncompat: sb.featureIncompat, featureROCompat: sb.featureROCompat)
    }
}
