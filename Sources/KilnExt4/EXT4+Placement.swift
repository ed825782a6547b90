import KilnCore

extension EXT4 {
    /// Where a finished filesystem put everything: its geometry and identity, the metadata of every group, and
    /// for every inode the blocks it owns and the names it is reached by.
    ///
    /// A later bake given this as its base (``EXT4Writer/Options/base``) keeps what did not change where it was:
    /// the same inode numbers, the same data blocks, the same directory blocks, the same group metadata. It is
    /// stored beside the manifest (`manifest.layout`) in the binary form ``encoded()`` writes, so a base is
    /// usable when the old image itself is gone.
    ///
    /// Format, all integers little-endian:
    ///
    /// | size | field |
    /// |---|---|
    /// | 8 | magic `KILNLAYT` |
    /// | 4 | format version, 1 |
    /// | 4 | block size, 4096 |
    /// | 8 | block count |
    /// | 8 | inodes per group |
    /// | 16 | filesystem UUID |
    /// | 16 | directory hash seed |
    /// | 8 | group count G, then G x (block bitmap, inode bitmap, inode table): 3 x u64 |
    /// | 4 | journal run count J, then J x (start u64, count u64) |
    /// | 4 | journal extent tree block count T, then T x u64 |
    /// | 8 | inode count N, then N records: inode u32, file type u8 (ext4's directory entry types), xattr block u64 (0: none), run count u32, runs x (start u64, count u32) |
    /// | 8 | entry count E, then E records: directory inode u32, child inode u32, name length u8, name bytes |
    ///
    /// Inodes ascend by number; entries by directory, then name bytes. A regular file's runs are its data
    /// blocks in file order, then its extent tree blocks; a directory's the same for its directory blocks.
    public struct Placement: Sendable, Hashable {
        /// The default file name beside the manifest.
        public static let defaultFileName = "manifest.layout"
        /// The format name the manifest records.
        public static let formatName = "kiln-ext4-layout-v1"
        static let magic: [UInt8] = Array("KILNLAYT".utf8)
        static let version: UInt32 = 1

        /// One group's bitmaps and inode table.
        public struct Group: Sendable, Hashable {
            public var blockBitmap: UInt64
            public var inodeBitmap: UInt64
            public var inodeTable: UInt64
        }

        /// One inode and the blocks it owns.
        public struct Inode: Sendable, Hashable {
            public var number: UInt32
            public var kind: FileKind
            public var xattrBlock: UInt64?
            /// Data blocks in file order, then extent tree blocks.
            public var runs: [Range<UInt64>]

            public var blockCount: UInt64 { runs.reduce(0) { $0 + UInt64($1.count) } }
        }

        /// One directory entry.
        public struct Entry: Sendable, Hashable {
            public var directory: UInt32
            public var name: [UInt8]
            public var inode: UInt32
        }

        public var blockCount: UInt64
        public var inodesPerGroup: UInt64
        public var uuid: [UInt8]
        public var hashSeed: [UInt8]
        public var groups: [Group]
        public var journalRuns: [Range<UInt64>]
        public var journalTreeBlocks: [UInt64]
        public var inodes: [Inode]
        public var entries: [Entry]

        /// Why a layout file cannot be read.
        public enum Error: Swift.Error, CustomStringConvertible, Equatable {
            case badMagic
            case unsupportedVersion(UInt32)
            case truncated(what: String)
            case invalid(String)

            public var description: String {
                switch self {
                case .badMagic: return "not a kiln layout file (no KILNLAYT magic)"
                case .unsupportedVersion(let v): return "layout format version \(v); this kiln reads version \(Placement.version)"
                case .truncated(let what): return "the file ends inside \(what)"
                case .invalid(let why): return why
                }
            }
        }

        /// The inode records by number.
        public func inodesByNumber() -> [UInt32: Inode] {
            Dictionary(inodes.map { ($0.number, $0) }, uniquingKeysWith: { a, _ in a })
        }

        /// The first path (sorted, breadth-first from the root) of every inode reachable from the root, as the
        /// writer reports paths.
        ///
        /// With `limit`, a path stops growing once it holds `limit` bytes: deeper inodes get their ancestor's
        /// prefix. Enough to tell where an inode lives, and bounded: a record (untrusted input) of a chain of
        /// deep directories would otherwise cost memory quadratic in its depth.
        public func pathsByInode(limit: Int = .max) -> [UInt32: BytePath] {
            var children: [UInt32: [(name: [UInt8], inode: UInt32)]] = [:]
            for e in entries { children[e.directory, default: []].append((e.name, e.inode)) }
            let kinds = Dictionary(inodes.map { ($0.number, $0.kind) }, uniquingKeysWith: { a, _ in a })
            var out: [UInt32: BytePath] = [EXT4.rootInode: "/"]
            var queue: [(UInt32, [UInt8])] = [(EXT4.rootInode, [])]
            var head = 0
            while head < queue.count {
                let (dir, prefix) = queue[head]
                head += 1
                for (name, c) in children[dir] ?? [] where out[c] == nil {
                    let p = prefix.count >= limit ? prefix : prefix + [BytePath.slash] + name
                    out[c] = BytePath(p)
                    if kinds[c] == .directory { queue.append((c, p)) }
                }
            }
            return out
        }

        // MARK: - Encoding

        /// The file's bytes.
        public func encoded() -> [UInt8] {
            var e = Encoder(
                blockCount: blockCount, inodesPerGroup: inodesPerGroup, uuid: uuid, hashSeed: hashSeed, groups: groups,
                journalRuns: journalRuns, journalTreeBlocks: journalTreeBlocks, inodeCount: inodes.count)
            for i in inodes { e.inode(i.number, kind: i.kind, xattrBlock: i.xattrBlock, runs: i.runs) }
            e.startEntries(entries.count)
            for x in entries { e.entry(directory: x.directory, name: x.name, inode: x.inode) }
            return e.bytes
        }

        /// Writes the format record by record, so that a large filesystem's layout needs no copy of itself.
        struct Encoder {
            private(set) var bytes: [UInt8] = []

            init(
                blockCount: UInt64, inodesPerGroup: UInt64, uuid: [UInt8], hashSeed: [UInt8], groups: [Group],
                journalRuns: [Range<UInt64>], journalTreeBlocks: [UInt64], inodeCount: Int
            ) {
                bytes.reserveCapacity(96 + groups.count * 24 + inodeCount * 32)
                bytes.append(contentsOf: Placement.magic)
                u32(Placement.version)
                u32(UInt32(EXT4.blockSize))
                u64(blockCount)
                u64(inodesPerGroup)
                bytes.append(contentsOf: Placement.padded(uuid))
                bytes.append(contentsOf: Placement.padded(hashSeed))
                u64(UInt64(groups.count))
                for g in groups {
                    u64(g.blockBitmap)
                    u64(g.inodeBitmap)
                    u64(g.inodeTable)
                }
                u32(UInt32(journalRuns.count))
                for r in journalRuns {
                    u64(r.lowerBound)
                    u64(UInt64(r.count))
                }
                u32(UInt32(journalTreeBlocks.count))
                for b in journalTreeBlocks { u64(b) }
                u64(UInt64(inodeCount))
            }

            mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
            mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

            /// One inode record (a run is at most 32768 blocks: extents are, and so are runs within one group).
            mutating func inode(_ number: UInt32, kind: FileKind, xattrBlock: UInt64?, runs: [Range<UInt64>]) {
                u32(number)
                bytes.append(kind.directoryFileType)
                u64(xattrBlock ?? 0)
                u32(UInt32(runs.count))
                for r in runs {
                    u64(r.lowerBound)
                    u32(UInt32(r.count))
                }
            }

            mutating func startEntries(_ count: Int) { u64(UInt64(count)) }

            mutating func entry(directory: UInt32, name: [UInt8], inode: UInt32) {
                u32(directory)
                u32(inode)
                bytes.append(UInt8(name.count))
                bytes.append(contentsOf: name)
            }
        }

        static func padded(_ b: [UInt8]) -> [UInt8] { Array((b + [UInt8](repeating: 0, count: 16)).prefix(16)) }

        /// Reads a layout file's bytes, checking every count against what is left and every block against the
        /// filesystem's size.
        public init(decoding bytes: [UInt8]) throws(Error) {
            var r = Reader(bytes: bytes)
            guard bytes.count >= 8, Array(bytes[0..<8]) == Self.magic else { throw .badMagic }
            r.at = 8
            let version = try r.u32("the header")
            guard version == Self.version else { throw .unsupportedVersion(version) }
            guard try r.u32("the header") == UInt32(EXT4.blockSize) else { throw .invalid("the block size is not 4096") }
            blockCount = try r.u64("the header")
            inodesPerGroup = try r.u64("the header")
            uuid = try r.bytes(16, "the header")
            hashSeed = try r.bytes(16, "the header")
            let blocks = blockCount
            func block(_ b: UInt64, _ what: String) throws(Error) -> UInt64 {
                guard b < blocks else { throw .invalid("\(what) names block \(b), past the filesystem's \(blocks) blocks") }
                return b
            }
            func run(_ start: UInt64, _ count: UInt64, _ what: String) throws(Error) -> Range<UInt64> {
                guard count > 0, start < blocks, count <= blocks - start else {
                    throw .invalid("\(what) has blocks \(start)+\(count), outside the filesystem's \(blocks) blocks")
                }
                return start..<(start + count)
            }
            let groupCount = try r.count(24, "the group table")
            guard groupCount == blocks / EXT4.blocksPerGroup + (blocks % EXT4.blocksPerGroup == 0 ? 0 : 1) else {
                throw .invalid("\(groupCount) groups do not match \(blocks) blocks")
            }
            guard inodesPerGroup > 0, inodesPerGroup <= 8 * UInt64(EXT4.blockSize), inodesPerGroup % 16 == 0 else {
                throw .invalid("\(inodesPerGroup) inodes per group is not a valid ext4 geometry")
            }
            let tableBlocks = inodesPerGroup * UInt64(EXT4.inodeSize) / UInt64(EXT4.blockSize)
            groups = []
            for g in 0..<groupCount {
                let bb = try block(try r.u64("the group table"), "group \(g)'s block bitmap")
                let ib = try block(try r.u64("the group table"), "group \(g)'s inode bitmap")
                let it = try r.u64("the group table")
                _ = try run(it, tableBlocks, "group \(g)'s inode table")
                groups.append(Group(blockBitmap: bb, inodeBitmap: ib, inodeTable: it))
            }
            journalRuns = []
            for _ in 0..<(try r.count(16, "the journal runs", width: 4)) {
                journalRuns.append(try run(try r.u64("the journal runs"), try r.u64("the journal runs"), "the journal"))
            }
            journalTreeBlocks = []
            for _ in 0..<(try r.count(8, "the journal tree blocks", width: 4)) {
                journalTreeBlocks.append(try block(try r.u64("the journal tree blocks"), "the journal's extent tree"))
            }
            let maxInode = inodesPerGroup * groupCount
            inodes = []
            var last: UInt32 = 0
            for _ in 0..<(try r.count(17, "the inode records")) {
                let number = try r.u32("the inode records")
                guard number > last, UInt64(number) <= maxInode else {
                    throw .invalid("inode \(number) is out of order or past the filesystem's \(maxInode) inodes")
                }
                last = number
                let type = try r.u8("the inode records")
                guard let kind = FileKind(directoryFileType: type) else { throw .invalid("inode \(number) has file type \(type)") }
                let xattr = try r.u64("the inode records")
                var runs: [Range<UInt64>] = []
                for _ in 0..<(try r.count(12, "inode \(number)'s runs", width: 4)) {
                    runs.append(try run(try r.u64("inode \(number)'s runs"), UInt64(try r.u32("inode \(number)'s runs")), "inode \(number)"))
                }
                inodes.append(Inode(number: number, kind: kind, xattrBlock: xattr == 0 ? nil : try block(xattr, "inode \(number)'s xattr block"), runs: runs))
            }
            entries = []
            for _ in 0..<(try r.count(9, "the directory entries")) {
                let dir = try r.u32("the directory entries")
                let child = try r.u32("the directory entries")
                let length = Int(try r.u8("the directory entries"))
                let name = try r.bytes(length, "the directory entries")
                guard UInt64(dir) <= maxInode, UInt64(child) <= maxInode, !name.isEmpty, !name.contains(0), !name.contains(BytePath.slash) else {
                    throw .invalid("a directory entry of inode \(dir) is not valid")
                }
                entries.append(Entry(directory: dir, name: name, inode: child))
            }
            guard r.at == bytes.count else { throw .invalid("\(bytes.count - r.at) bytes follow the last entry") }
            try checkConsistency()
        }

        /// What a writer relies on when it follows a base: inode numbers it may hand out, entries that name
        /// recorded inodes in order, and no block owned twice (a hostile record must not make two files, or a
        /// file and an inode table, share a block).
        func checkConsistency() throws(Error) {
            var kinds: [UInt32: FileKind] = [:]
            for i in inodes {
                guard i.number == EXT4.rootInode || i.number >= EXT4.lostAndFoundInode else {
                    throw .invalid("inode \(i.number) is one of ext4's reserved inodes")
                }
                kinds[i.number] = i.kind
            }
            if let root = kinds[EXT4.rootInode], root != .directory { throw .invalid("the root inode is not a directory") }
            var previous: (UInt32, [UInt8])? = nil
            for e in entries {
                guard kinds[e.directory] == .directory, kinds[e.inode] != nil else {
                    throw .invalid("an entry of inode \(e.directory) names inode \(e.inode), which is not recorded (or its directory is not)")
                }
                if let (d, n) = previous, !(d < e.directory || (d == e.directory && n.lexicographicallyPrecedes(e.name))) {
                    throw .invalid("the entries of inode \(e.directory) are not in ascending order, or repeat a name")
                }
                previous = (e.directory, e.name)
            }
            // Every owned range, sorted: each must start at or after the end of all before it. The work and memory
            // follow the record's size, whatever block count it claims.
            enum Owner { case groupStart(Int), blockBitmap(Int), inodeBitmap(Int), inodeTable(Int), journal, journalTree, inode(UInt32), xattr(UInt32) }
            var ranges: [(range: Range<UInt64>, owner: Owner)] = []
            let tableBlocks = inodesPerGroup * UInt64(EXT4.inodeSize) / UInt64(EXT4.blockSize)
            for (g, group) in groups.enumerated() {
                let start = UInt64(g) * EXT4.blocksPerGroup
                ranges.append((start..<(start + EXT4.groupBaseBlocks(UInt64(g))), .groupStart(g)))
                ranges.append((group.blockBitmap..<(group.blockBitmap + 1), .blockBitmap(g)))
                ranges.append((group.inodeBitmap..<(group.inodeBitmap + 1), .inodeBitmap(g)))
                ranges.append((group.inodeTable..<(group.inodeTable + tableBlocks), .inodeTable(g)))
            }
            for r in journalRuns { ranges.append((r, .journal)) }
            for b in journalTreeBlocks { ranges.append((b..<(b + 1), .journalTree)) }
            for i in inodes {
                for r in i.runs { ranges.append((r, .inode(i.number))) }
                if let x = i.xattrBlock { ranges.append((x..<(x + 1), .xattr(i.number))) }
            }
            ranges.removeAll { $0.range.isEmpty }
            ranges.sort { $0.range.lowerBound < $1.range.lowerBound }
            var end: UInt64 = 0
            var endOwner: Owner? = nil
            func name(_ o: Owner) -> String {
                switch o {
                case .groupStart(let g): return "group \(g)'s superblock and descriptors"
                case .blockBitmap(let g): return "group \(g)'s block bitmap"
                case .inodeBitmap(let g): return "group \(g)'s inode bitmap"
                case .inodeTable(let g): return "group \(g)'s inode table"
                case .journal: return "the journal"
                case .journalTree: return "the journal's extent tree"
                case .inode(let n): return "inode \(n)"
                case .xattr(let n): return "inode \(n)'s xattr block"
                }
            }
            for (r, owner) in ranges {
                if r.lowerBound < end, let other = endOwner {
                    throw .invalid("block \(r.lowerBound) belongs to both \(name(other)) and \(name(owner))")
                }
                if r.upperBound > end {
                    end = r.upperBound
                    endOwner = owner
                }
            }
        }

        public init(
            blockCount: UInt64, inodesPerGroup: UInt64, uuid: [UInt8], hashSeed: [UInt8], groups: [Group],
            journalRuns: [Range<UInt64>], journalTreeBlocks: [UInt64], inodes: [Inode], entries: [Entry]
        ) {
            self.blockCount = blockCount
            self.inodesPerGroup = inodesPerGroup
            self.uuid = uuid
            self.hashSeed = hashSeed
            self.groups = groups
            self.journalRuns = journalRuns
            self.journalTreeBlocks = journalTreeBlocks
            self.inodes = inodes
            self.entries = entries
        }

        /// A bounds-checked little-endian cursor.
        struct Reader {
            let bytes: [UInt8]
            var at = 0

            mutating func bytes(_ n: Int, _ what: String) throws(Error) -> [UInt8] {
                guard n >= 0, n <= bytes.count - at else { throw .truncated(what: what) }
                defer { at += n }
                return Array(bytes[at..<(at + n)])
            }

            mutating func u8(_ what: String) throws(Error) -> UInt8 { try bytes(1, what)[0] }

            mutating func u32(_ what: String) throws(Error) -> UInt32 {
                guard bytes.count - at >= 4 else { throw .truncated(what: what) }
                defer { at += 4 }
                return bytes.le32(at: at)
            }

            mutating func u64(_ what: String) throws(Error) -> UInt64 {
                guard bytes.count - at >= 8 else { throw .truncated(what: what) }
                defer { at += 8 }
                return bytes.le64(at: at)
            }

            /// A record count, refused when even records of `minimum` bytes could not fit in what is left.
            mutating func count(_ minimum: Int, _ what: String, width: Int = 8) throws(Error) -> UInt64 {
                let n = width == 4 ? UInt64(try u32(what)) : try u64(what)
                guard n <= UInt64(bytes.count - at) / UInt64(minimum) else { throw .truncated(what: what) }
                return n
            }
        }
    }
}

extension EXT4.FileKind {
    init?(directoryFileType t: UInt8) {
        switch t {
        case 1: self = .regular
        case 2: self = .directory
        case 3: self = .characterDevice
        case 4: self = .blockDevice
        case 5: self = .fifo
        case 6: self = .socket
        case 7: self = .symlink
        default: return nil
        }
    }
}
