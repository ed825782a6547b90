import KilnCore

extension EXT4 {
    /// A previous filesystem whose places a new one keeps where it can (an incremental bake).
    ///
    /// A node created at a directory entry the base also had, with the same kind, takes the base's inode number
    /// and its blocks: a file's data goes into the blocks it had (more data than before goes to free space), a
    /// directory's entries into its old directory blocks when they still fit. The geometry, UUID, hash seed,
    /// group metadata and journal stay where they were. Blocks and inode numbers of the base that are not kept
    /// are free for new content, which fills them first (lowest first), then what follows.
    public struct Base: Sendable {
        public var placement: Placement
        /// The base's inodes that may be found again. Only their blocks and numbers are held back for them;
        /// an inode kept here that the new filesystem does not have again leaves its blocks free (and zero).
        public var keep: Set<UInt32>

        public init(placement: Placement, keep: Set<UInt32>) {
            self.placement = placement
            self.keep = keep
        }
    }
}

extension EXT4Writer {
    /// Nodes that took their inode number and blocks from the base (``Options/base``).
    public var keptInodes: Int { base?.claimed ?? 0 }

    /// What the writer tracks of its base while it writes.
    struct BaseState {
        let placement: EXT4.Placement
        let keep: Set<UInt32>
        /// Kept entries: directory -> name -> inode.
        let children: [UInt32: [[UInt8]: UInt32]]
        /// Kept inodes no node has taken yet.
        var unclaimed: [UInt32: EXT4.Placement.Inode]
        /// Directories that took a base inode, with the base's directory blocks (data, then tree blocks).
        var directoryBlocks: [UInt32: [Range<UInt64>]] = [:]
        var xattrBlocks: [UInt32: UInt64] = [:]
        /// The lowest inode number a new node may get.
        var nextInode: UInt32 = EXT4.lostAndFoundInode + 1
        /// The base blocks of the node being written, used before any new block.
        var preferred: [Range<UInt64>] = []
        /// Nodes that took their base inode.
        var claimed = 0
        /// The base records of the inodes taken, to give back when their node is freed in this bake.
        var taken: [UInt32: EXT4.Placement.Inode] = [:]

        init(_ base: EXT4.Base) {
            placement = base.placement
            keep = base.keep
            var children: [UInt32: [[UInt8]: UInt32]] = [:]
            for e in base.placement.entries where base.keep.contains(e.directory) && base.keep.contains(e.inode) {
                children[e.directory, default: [:]][e.name] = e.inode
            }
            self.children = children
            var unclaimed: [UInt32: EXT4.Placement.Inode] = [:]
            for i in base.placement.inodes where base.keep.contains(i.number) { unclaimed[i.number] = i }
            self.unclaimed = unclaimed
        }

        /// Blocks the allocator must not hand out: the kept inodes' and the base's group metadata and journal.
        func reservedBlocks() -> [Range<UInt64>] {
            var out: [Range<UInt64>] = []
            for i in unclaimed.values {
                out.append(contentsOf: i.runs)
                if let x = i.xattrBlock { out.append(x..<(x + 1)) }
            }
            let table = placement.inodesPerGroup * UInt64(EXT4.inodeSize) / UInt64(EXT4.blockSize)
            for g in placement.groups {
                out.append(g.blockBitmap..<(g.blockBitmap + 1))
                out.append(g.inodeBitmap..<(g.inodeBitmap + 1))
                out.append(g.inodeTable..<(g.inodeTable + table))
            }
            out.append(contentsOf: placement.journalRuns)
            for b in placement.journalTreeBlocks { out.append(b..<(b + 1)) }
            return out
        }

        /// Takes the base inode at `name` in `dir` for a new node of `kind`, if the base kept one there.
        mutating func claim(_ kind: EXT4.FileKind, in dir: UInt32, name: [UInt8]) -> UInt32? {
            preferred = []
            guard let number = children[dir]?[name], let record = unclaimed[number], record.kind == kind else { return nil }
            unclaimed[number] = nil
            taken[number] = record
            claimed += 1
            switch kind {
            case .directory: directoryBlocks[number] = record.runs
            case .regular, .symlink: preferred = record.runs.reversed()
            default: break
            }
            if let x = record.xattrBlock { xattrBlocks[number] = x }
            return number
        }

        /// Gives a taken base inode back when its node is freed (replaced or removed later in the same bake), so
        /// that what is made at its name next takes it again: a file a later layer replaces ends where the base
        /// had its last version.
        mutating func release(_ number: UInt32) {
            guard let record = taken.removeValue(forKey: number) else { return }
            unclaimed[number] = record
            claimed -= 1
            directoryBlocks[number] = nil
            xattrBlocks[number] = nil
        }

        /// The next inode number no kept inode holds.
        mutating func newInode() -> UInt32 {
            while keep.contains(nextInode) { nextInode += 1 }
            defer { nextInode += 1 }
            return nextInode
        }

        /// Up to `count` of the current node's base blocks, or nil when none are left.
        mutating func takePreferred(_ count: UInt64) -> Range<UInt64>? {
            guard var r = preferred.popLast() else { return nil }
            let n = min(count, UInt64(r.count))
            let out = r.lowerBound..<(r.lowerBound + n)
            r = out.upperBound..<r.upperBound
            if !r.isEmpty { preferred.append(r) }
            return out
        }

        /// The first `count` blocks of `runs` as runs, and the rest.
        static func split(_ runs: [Range<UInt64>], first count: UInt64) -> (head: [Range<UInt64>], rest: [Range<UInt64>])? {
            var head: [Range<UInt64>] = []
            var rest: [Range<UInt64>] = []
            var left = count
            for r in runs {
                if left == 0 {
                    rest.append(r)
                } else if UInt64(r.count) <= left {
                    head.append(r)
                    left -= UInt64(r.count)
                } else {
                    head.append(r.lowerBound..<(r.lowerBound + left))
                    rest.append((r.lowerBound + left)..<r.upperBound)
                    left = 0
                }
            }
            return left == 0 ? (head, rest) : nil
        }
    }

    /// The geometry of a filesystem that keeps its base's: the same size, inodes per group and journal, or,
    /// with automatic sizing, more groups at the end when the content no longer fits.
    func baseGeometry(_ b: EXT4.Placement, directories: [(UInt32, Int)], xattrInodes: [UInt32]) throws -> Geometry {
        let ipg = b.inodesPerGroup
        let journal = b.journalRuns.reduce(0) { $0 + UInt64($1.count) }
        let highest = UInt64(nodes.lastIndex(where: \.live) ?? Int(EXT4.lostAndFoundInode))
        var blocks = b.blockCount
        for _ in 0..<64 {
            let groups = (blocks + EXT4.blocksPerGroup - 1) / EXT4.blocksPerGroup
            let geometry = Geometry(blocks: blocks, groups: groups, inodesPerGroup: ipg, journalBlocks: journal)
            var need: UInt64
            if highest <= ipg * groups {
                var a = allocator
                a.limit = nil
                _ = try plan(&a, geometry: geometry, directories: directories, xattrInodes: xattrInodes)
                if a.next <= blocks { return geometry }
                need = a.next
            } else {
                need = (highest + ipg - 1) / ipg * EXT4.blocksPerGroup
            }
            guard fixedBlocks == nil else {
                throw Error.doesNotFit(neededBytes: need * UInt64(EXT4.blockSize), availableBytes: blocks * UInt64(EXT4.blockSize))
            }
            let headroom = UInt64(max(0, options.headroomPercent))
            need += max(need * headroom / 100, headroom > 0 ? 256 : 0)
            need = (need + 255) / 256 * 256
            let tail = need % EXT4.blocksPerGroup
            if tail != 0 && tail < 1024 { need += 1024 - tail }
            blocks = max(need, blocks + 1)
        }
        throw Error.tooManyInodes(needed: highest)
    }
}
