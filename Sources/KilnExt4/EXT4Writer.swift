#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KilnCore
import KilnDigest

/// Writes an ext4 filesystem into a file, without mkfs, mount or root.
///
/// File contents stream straight to their final blocks as they arrive (one file at a time, in contiguous
/// extents); everything else, inode tables, bitmaps, directories, group descriptors, superblocks and the
/// journal superblock, is written by ``close()``. The tree lives in memory with a small fixed cost per node.
///
/// Every path argument is resolved inside a subtree root (the filesystem root unless a directory node is
/// given) the way containerd extracts layers: `..` stops at the subtree root, absolute paths and absolute
/// symlink targets start at it, symlinks in intermediate components are followed inside it, and the final
/// component of a path that is being created is never followed.
///
/// The output is deterministic: the same calls with the same ``Options`` give byte-identical images.
///
/// Layout: 4 KiB blocks, 256-byte inodes, 64-bit group descriptors in the meta_bg arrangement (one descriptor
/// block per 64 groups, copied into the first, second and last group of its run) and sparse_super backups.
/// With meta_bg the blocks reserved at the start of every group do not depend on the filesystem size, so data
/// can stream in before the size is known, and the kernel grows the filesystem online without reserved GDT
/// blocks. Bitmaps, inode tables (flex_bg lets them live anywhere), directories, xattr blocks and the journal
/// follow the data. The journal is left zero apart from its superblock, and blocks that hold nothing are
/// never written, so the image stays sparse.
public final class EXT4Writer {
    /// How big the filesystem is.
    public enum Size: Sendable, Hashable {
        /// What the content needs plus ``Options/headroomPercent`` (and spare inodes), rounded to 1 MiB.
        case automatic
        /// Exactly this many bytes (rounded down to whole blocks); ``close()`` fails when the content does not fit.
        case bytes(UInt64)
    }

    /// Filesystem-wide choices.
    public struct Options: Sendable {
        public var size: Size
        /// Bytes from which the UUID and the directory hash seed derive (e.g. a content digest).
        public var seed: [UInt8]
        /// The time of everything the caller does not give a time for (e.g. `SOURCE_DATE_EPOCH`).
        public var defaultTime: EXT4.Timestamp
        /// Bytes of filesystem per inode (mkfs's `-i`); more inodes are added when the content needs them.
        public var inodeRatio: Int
        /// Extra free space for automatic sizing, in percent of what the content uses.
        public var headroomPercent: Int
        /// The directory index hash (`s_def_hash_version`).
        public var hashVersion: EXT4.HashVersion
        /// Up to 16 bytes of volume label.
        public var volumeName: String
        /// Whether file blocks that are entirely zero are left as holes (as `mke2fs -d` and `cp --sparse` do).
        public var zeroBlocksAsHoles: Bool
        /// Directories a path may resolve through below the root it is resolved under (symlinks followed):
        /// deeper paths are refused, which bounds the work of every walk of the tree.
        public var maximumDepth: Int = 4096
        /// Told of every byte range of the image file the writer (or a reserved file) changes: a block hasher can
        /// follow the image as it is written instead of reading it again afterwards.
        public var writeObserver: (any ImageWriteObserver)?
        /// A previous filesystem whose geometry, identity and places are kept where the content allows
        /// (``EXT4/Base``); ``size`` must then be automatic or the base's own size.
        public var base: EXT4.Base?

        public init(
            size: Size = .automatic, seed: [UInt8] = [], defaultTime: EXT4.Timestamp = .zero,
            inodeRatio: Int = 16384, headroomPercent: Int = 10, hashVersion: EXT4.HashVersion = .halfMD4,
            volumeName: String = "", zeroBlocksAsHoles: Bool = true
        ) {
            self.size = size
            self.seed = seed
            self.defaultTime = defaultTime
            self.inodeRatio = inodeRatio
            self.headroomPercent = headroomPercent
            self.hashVersion = hashVersion
            self.volumeName = volumeName
            self.zeroBlocksAsHoles = zeroBlocksAsHoles
        }
    }

    /// Errors raised by the writer; each names the path or value involved.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case cannotOpen(path: String, errno: Int32)
        case io(operation: String, path: String, errno: Int32)
        case invalidOffset(UInt64)
        case invalidSize(UInt64)
        case nameTooLong(path: BytePath, length: Int)
        case invalidName(path: BytePath)
        case notFound(path: BytePath)
        case notADirectory(path: BytePath)
        case isADirectory(path: BytePath)
        case symlinkLoop(path: BytePath)
        case invalidSymlinkTarget(path: BytePath, length: Int)
        case cannotReplaceRoot(path: BytePath)
        case protectedPath(path: BytePath)
        case fileStillOpen(path: BytePath)
        case noOpenFile
        case fileTooLarge(path: BytePath, size: UInt64)
        case doesNotFit(neededBytes: UInt64, availableBytes: UInt64)
        case tooManyInodes(needed: UInt64)
        case unknownNode(EXT4.NodeID)
        case unsupportedXattr(name: String)
        case invalidACL(path: BytePath, name: String)
        case xattrsTooLarge(path: BytePath, bytes: Int)
        case tooManyLinks(path: BytePath)
        case directoryTooLarge(path: BytePath, entries: Int)
        case invalidDevice(path: BytePath, major: UInt32, minor: UInt32)
        case tooDeep(path: BytePath, limit: Int)
        case closed

        public var description: String {
            switch self {
            case .cannotOpen(let p, let e): return "cannot open image file '\(p)': \(String(cString: strerror(e)))"
            case .io(let op, let p, let e): return "\(op) failed on image file '\(p)': \(String(cString: strerror(e)))"
            case .invalidOffset(let o): return "filesystem offset \(o) is not a multiple of 512 bytes"
            case .invalidSize(let s): return "filesystem size \(s) bytes is too small (at least 1 MiB is needed)"
            case .nameTooLong(let p, let n): return "name in '\(p)' is \(n) bytes long; ext4 allows at most 255"
            case .invalidName(let p): return "'\(p)' does not name a directory entry (empty, '.', '..' or contains NUL)"
            case .notFound(let p): return "'\(p)' does not exist"
            case .notADirectory(let p): return "a component of '\(p)' is not a directory"
            case .isADirectory(let p): return "'\(p)' is a directory"
            case .symlinkLoop(let p): return "too many symbolic links while resolving '\(p)'"
            case .invalidSymlinkTarget(let p, let n):
                return "symlink '\(p)' has a \(n)-byte target; it must be 1 to 4095 bytes without NUL"
            case .cannotReplaceRoot(let p): return "'\(p)' is the subtree root and cannot be replaced or removed"
            case .protectedPath(let p): return "'\(p)' is /lost+found of the filesystem and cannot be replaced or removed"
            case .fileStillOpen(let p): return "file '\(p)' is still being written; finish it first"
            case .noOpenFile: return "no file is being written"
            case .fileTooLarge(let p, let s): return "file '\(p)' would be \(s) bytes; ext4 allows at most \(EXT4.maximumFileSize)"
            case .doesNotFit(let n, let a):
                return "content needs \(n) bytes (\(n / 1_048_576) MiB) but the filesystem size is \(a) bytes (\(a / 1_048_576) MiB)"
            case .tooManyInodes(let n): return "content needs \(n) inodes, more than ext4 can address"
            case .unknownNode(let id): return "\(id) is not a live node of this filesystem"
            case .unsupportedXattr(let n):
                return "extended attribute '\(n)' is not in a namespace ext4 stores (user., trusted., security., system.)"
            case .invalidACL(let p, let n): return "extended attribute '\(n)' of '\(p)' is not a valid POSIX ACL"
            case .xattrsTooLarge(let p, let n):
                return "extended attributes of '\(p)' need \(n) bytes; they must fit in the inode and one 4 KiB block"
            case .tooManyLinks(let p): return "'\(p)' already has \(EXT4.linkMax) links"
            case .directoryTooLarge(let p, let n): return "directory '\(p)' has \(n) entries, more than a two-level htree holds"
            case .invalidDevice(let p, let ma, let mi):
                return "device '\(p)' has number \(ma):\(mi); major must be < 4096 and minor < 1048576"
            case .tooDeep(let p, let n): return "'\(p)' resolves through more than \(n) directories (budget depth)"
            case .closed: return "the writer is already closed"
            }
        }
    }

    /// The file being streamed.
    struct OpenFile {
        var inode: UInt32
        var path: BytePath
        var size: UInt64 = 0
        /// Bytes of the current, not yet complete block (held in ``EXT4Writer/partialBlock``).
        var partialCount = 0
    }

    public let options: Options
    /// Nodes freed so far (replaced or removed), and the bytes they would take as `st_blocks * 512` counts
    /// them with every block written: what a caller subtracts from its own count of what it made.
    public internal(set) var freedInodes: Int64 = 0
    public internal(set) var freedBytes: UInt64 = 0
    let file: EXT4.ImageFile
    let uuid: [UInt8]
    let hashSeed: [UInt8]
    let checksumSeed: UInt32
    let directoryHash: EXT4.DirectoryHash
    let fixedBlocks: UInt64?
    var nodes: [Node]
    var allocator: EXT4.BlockAllocator
    var current: OpenFile?
    /// Counts removals from the tree: a path resolved before one may resolve differently after it.
    var treeGeneration: UInt64 = 0
    /// Where the last walked path's parent led (``walk(_:root:followFinal:createParents:)``).
    var lastParent: ParentCache?

    struct ParentCache {
        var root: UInt32
        var parent: [UInt8]
        var directory: UInt32
        var generation: UInt64
    }
    /// The open file's last, incomplete block; zero past what it holds. One buffer for every file: a layer of a
    /// million small files must not allocate and clear a block for each.
    var partialBlock = [UInt8](repeating: 0, count: EXT4.blockSize)
    /// Contiguous file blocks waiting to be written in one call.
    var pendingStart: UInt64 = 0
    var pendingBytes: [UInt8] = []
    var isClosed = false
    /// The base being followed, if any.
    var base: BaseState?
    /// Where everything went (``EXT4/Placement``, encoded), filled by ``close()``.
    public internal(set) var placementFile: [UInt8] = []

    static let pendingLimit = 256 * EXT4.blockSize
    /// A pending run past ``pendingLimit`` is handed over where it reaches a multiple of this many bytes of the
    /// image file (the EBS block size), so that the next run starts on one: an observer hashing EBS blocks then
    /// finds nearly every block whole in one write, and never has to read it back.
    static let pendingAlignment = 512 << 10

    /// Starts a filesystem in the file at `path` (created if missing), `offset` bytes into it. Everything from
    /// `offset` on belongs to the writer: the file is truncated there first, so unwritten blocks read as zero.
    public init(path: String, offset: UInt64 = 0, options: Options = Options()) throws {
        guard offset % 512 == 0 else { throw Error.invalidOffset(offset) }
        if case .bytes(let b) = options.size {
            guard b / UInt64(EXT4.blockSize) >= 256 else { throw Error.invalidSize(b) }
            fixedBlocks = b / UInt64(EXT4.blockSize)
        } else {
            fixedBlocks = nil
        }
        self.options = options
        do {
            file = try EXT4.ImageFile(path: path, offset: offset, writable: true)
            file.observer = options.writeObserver
        } catch EXT4.ImageFile.Failure.open(let p, let e) {
            throw Error.cannotOpen(path: p, errno: e)
        } catch EXT4.ImageFile.Failure.io(let op, let p, let e) {
            throw Error.io(operation: op, path: p, errno: e)
        }
        var u = SHA256Hasher.hashBytes(from: options.seed, label: "kiln ext4 uuid").prefix(16).map { $0 }
        u[6] = (u[6] & 0x0F) | 0x40  // RFC 4122 version 4 layout, variant 1
        u[8] = (u[8] & 0x3F) | 0x80
        // Every metadata checksum is seeded by the UUID and every htree by the hash seed: keeping the base's is
        // what lets unchanged metadata blocks stay byte-identical.
        uuid = options.base?.placement.uuid ?? u
        hashSeed = options.base?.placement.hashSeed
            ?? Array(SHA256Hasher.hashBytes(from: options.seed, label: "kiln ext4 hash seed").prefix(16))
        checksumSeed = EXT4.crc32c(0xFFFF_FFFF, uuid)
        directoryHash = EXT4.DirectoryHash(
            version: options.hashVersion, unsigned: true,
            seed: (hashSeed.le32(at: 0), hashSeed.le32(at: 4), hashSeed.le32(at: 8), hashSeed.le32(at: 12)))
        allocator = EXT4.BlockAllocator(limit: fixedBlocks)

        let reservedMetadata = EXT4.Metadata(permissions: 0, time: options.defaultTime)
        nodes = Array(repeating: Node(kind: .regular, metadata: reservedMetadata, live: false), count: 12)
        nodes[Int(EXT4.rootInode)] = Node(
            kind: .directory, metadata: EXT4.Metadata(permissions: 0o755, time: options.defaultTime),
            parent: EXT4.rootInode, children: [:])
        nodes[Int(EXT4.lostAndFoundInode)] = Node(
            kind: .directory, metadata: EXT4.Metadata(permissions: 0o700, time: options.defaultTime),
            parent: EXT4.rootInode, children: [:])
        nodes[Int(EXT4.rootInode)].children = [Array("lost+found".utf8): EXT4.lostAndFoundInode]
        nodes[Int(EXT4.rootInode)].subdirectories = 1
        if let b = options.base {
            var state = BaseState(b)
            if let root = state.unclaimed.removeValue(forKey: EXT4.rootInode) { state.directoryBlocks[EXT4.rootInode] = root.runs }
            _ = state.claim(.directory, in: EXT4.rootInode, name: Array("lost+found".utf8))
            allocator.reserve(state.reservedBlocks() + state.directoryBlocks.values.flatMap { $0 })
            base = state
        }
    }

    /// The filesystem root directory.
    public var root: EXT4.NodeID { .root }

    func mapIO<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch EXT4.ImageFile.Failure.io(let op, let p, let e) {
            throw Error.io(operation: op, path: p, errno: e)
        } catch EXT4.ImageFile.Failure.open(let p, let e) {
            throw Error.cannotOpen(path: p, errno: e)
        }
    }
}

extension SHA256Hasher {
    /// SHA-256 of a label and the seed bytes, so that different derived values never coincide.
    static func hashBytes(from seed: [UInt8], label: String) -> [UInt8] {
        let input = Array(label.utf8) + [0] + seed
        return input.withUnsafeBytes { SHA256Hasher.hashBytes($0) }
    }
}
