import Dispatch
import KilnCore
/// Finishing the filesystem: sizing, placing and writing all metadata.
extension EXT4Writer {
    /// Filesystem dimensions chosen at close.
    struct Geometry {
        var blocks: UInt64
        var groups: UInt64
        var inodesPerGroup: UInt64
        var journalBlocks: UInt64

        var inodeTableBlocks: UInt64 { inodesPerGroup * UInt64(EXT4.inodeSize) / UInt64(EXT4.blockSize) }
    }

    /// Where close() puts each piece of metadata.
    struct Plan {
        var blockBitmaps: [UInt64] = []
        var inodeBitmaps: [UInt64] = []
        var inodeTables: [UInt64] = []
        var directoryRuns: [UInt32: [Range<UInt64>]] = [:]
        var directoryTreeBlocks: [UInt32: [UInt64]] = [:]
        var xattrBlocks: [UInt32: UInt64] = [:]
        var journalRuns: [Range<UInt64>] = []
        var journalTreeBlocks: [UInt64] = []
    }

    /// `ext2fs_default_journal_size`, with the 1024-block minimum for filesystems below 8 MiB.
    static func journalBlocks(for blocks: UInt64) -> UInt64 {
        switch blocks {
        case ..<32768: return 1024
        case ..<(256 * 1024): return 4096
        case ..<(512 * 1024): return 8192
        case ..<(4096 * 1024): return 16384
        case ..<(8192 * 1024): return 32768
        case ..<(16384 * 1024): return 65536
        case ..<(32768 * 1024): return 131_072
        default: return 262_144
        }
    }

    /// Splits block runs into extents of at most 32768 blocks, numbered from logical block 0.
    static func extents(fromRuns runs: [Range<UInt64>]) -> [EXT4.Extent] {
        var out: [EXT4.Extent] = []
        var logical: UInt64 = 0
        for r in runs {
            var start = r.lowerBound
            while start < r.upperBound {
                let n = min(r.upperBound - start, UInt64(EXT4.maximumExtentLength))
                out.append(EXT4.Extent(logical: UInt32(logical), physical: start, length: UInt32(n)))
                logical += n
                start += n
            }
        }
        return out
    }

    /// Inodes per group: mkfs's ratio, or more when the content needs them; nil when a group cannot hold
    /// enough (more groups are needed).
    func inodesPerGroup(blocks: UInt64, groups: UInt64, needed: UInt64) -> UInt64? {
        let ratio = UInt64(max(options.inodeRatio, EXT4.blockSize))
        let byRatio = (blocks * UInt64(EXT4.blockSize) / ratio + groups - 1) / groups
        let byNeed = (needed + groups - 1) / groups
        var ipg = max(byRatio, byNeed, 16)
        ipg = (ipg + 15) / 16 * 16
        if ipg > 8 * UInt64(EXT4.blockSize) {
            if byNeed > 8 * UInt64(EXT4.blockSize) { return nil }
            ipg = 8 * UInt64(EXT4.blockSize)
        }
        guard ipg * groups < UInt64(UInt32.max) else { return nil }
        return ipg
    }

    /// Lays out all metadata after the data with `allocator`; run on a copy to size, then for real.
    func plan(
        _ a: inout EXT4.BlockAllocator, geometry g: Geometry, directories: [(UInt32, Int)], xattrInodes: [UInt32]
    ) throws -> Plan {
        var p = Plan()
        // A base's groups keep their metadata where it was; only groups beyond it get new places.
        let kept = base?.placement.groups ?? []
        for group in 0..<Int(g.groups) {
            p.blockBitmaps.append(group < kept.count ? kept[group].blockBitmap : try a.allocate(upTo: 1).lowerBound)
        }
        for group in 0..<Int(g.groups) {
            p.inodeBitmaps.append(group < kept.count ? kept[group].inodeBitmap : try a.allocate(upTo: 1).lowerBound)
        }
        for group in 0..<Int(g.groups) {
            p.inodeTables.append(group < kept.count ? kept[group].inodeTable : try a.allocateContiguous(g.inodeTableBlocks).lowerBound)
        }
        for (ino, count) in directories {
            var runs: [Range<UInt64>]
            var spare: [Range<UInt64>] = []
            if let old = base?.directoryBlocks[ino], let split = BaseState.split(old, first: UInt64(count)) {
                (runs, spare) = (split.head, split.rest)
            } else {
                runs = try a.allocateRuns(UInt64(count))
            }
            p.directoryRuns[ino] = runs
            let treeCount = EXT4.extentTreeBlockCount(Self.extents(fromRuns: runs).count)
            if treeCount > 0 {
                let tree = try BaseState.split(spare, first: UInt64(treeCount))?.head ?? a.allocateRuns(UInt64(treeCount))
                p.directoryTreeBlocks[ino] = tree.flatMap { Array($0) }
            }
        }
        for ino in xattrInodes { p.xattrBlocks[ino] = try base?.xattrBlocks[ino] ?? a.allocate(upTo: 1).lowerBound }
        if let b = base?.placement {
            p.journalRuns = b.journalRuns
            p.journalTreeBlocks = b.journalTreeBlocks
        } else {
            p.journalRuns = try a.allocateRuns(g.journalBlocks)
            let jt = EXT4.extentTreeBlockCount(Self.extents(fromRuns: p.journalRuns).count)
            if jt > 0 { p.journalTreeBlocks = try a.allocateRuns(UInt64(jt)).flatMap { Array($0) } }
        }
        return p
    }

    /// The smallest geometry that holds the content with `headroom` percent spare, as automatic sizing uses
    /// it (and as the "needs" figure of a fixed size that is too small).
    func automaticGeometry(headroom: Int, directories: [(UInt32, Int)], xattrInodes: [UInt32]) throws -> Geometry {
        let usedInodes = UInt64(nodes.count - 1)
        let liveInodes = UInt64(nodes.lazy.filter(\.live).count)
        let neededInodes = usedInodes + max(liveInodes * UInt64(headroom) / 100, 64)
        var blocks = max(2048, allocator.next + UInt64(directories.count) + 1024)
        for _ in 0..<64 {
            let groups = (blocks + EXT4.blocksPerGroup - 1) / EXT4.blocksPerGroup
            guard let ipg = inodesPerGroup(blocks: blocks, groups: groups, needed: neededInodes) else {
                let minGroups = (neededInodes + 8 * UInt64(EXT4.blockSize) - 1) / (8 * UInt64(EXT4.blockSize))
                guard minGroups < (UInt64(1) << 32) / 8 else { throw Error.tooManyInodes(needed: neededInodes) }
                blocks = max(blocks + EXT4.blocksPerGroup, minGroups * EXT4.blocksPerGroup)
                continue
            }
            let geometry = Geometry(
                blocks: blocks, groups: groups, inodesPerGroup: ipg, journalBlocks: Self.journalBlocks(for: blocks))
            var a = allocator
            a.limit = nil
            _ = try plan(&a, geometry: geometry, directories: directories, xattrInodes: xattrInodes)
            let used = a.next
            var want = used + max(used * UInt64(headroom) / 100, headroom > 0 ? 256 : 0)
            want = (want + 255) / 256 * 256
            let tail = want % EXT4.blocksPerGroup
            if tail != 0 && tail < 1024 { want += 1024 - tail }
            if want <= blocks { return geometry }
            blocks = want
        }
        throw Error.tooManyInodes(needed: neededInodes)
    }

    /// The blocks a filesystem of `requested` blocks really has: a last group under 64 blocks is dropped.
    public static func fixedBlockCount(_ requested: UInt64) -> UInt64 {
        let tail = requested % EXT4.blocksPerGroup
        return tail != 0 && tail < 64 && requested > tail ? requested - tail : requested
    }

    /// The geometry of a filesystem of exactly `blocks` blocks (a last group under 64 blocks is dropped), or
    /// nil when the content and its metadata do not fit.
    func fixedGeometry(blocks requested: UInt64, directories: [(UInt32, Int)], xattrInodes: [UInt32]) -> Geometry? {
        let blocks = Self.fixedBlockCount(requested)
        let groups = (blocks + EXT4.blocksPerGroup - 1) / EXT4.blocksPerGroup
        guard let ipg = inodesPerGroup(blocks: blocks, groups: groups, needed: UInt64(nodes.count - 1)) else { return nil }
        let geometry = Geometry(
            blocks: blocks, groups: groups, inodesPerGroup: ipg, journalBlocks: Self.journalBlocks(for: blocks))
        var a = allocator
        a.limit = blocks
        guard (try? plan(&a, geometry: geometry, directories: directories, xattrInodes: xattrInodes)) != nil else {
            return nil
        }
        return geometry
    }

    /// Directory entries of `dir` (without "." and "..").
    func directoryEntries(_ dir: UInt32) -> [EXT4.DirectoryEntry] {
        (nodes[Int(dir)].children ?? [:]).map { name, ino in
            EXT4.DirectoryEntry(name: name, inode: ino, fileType: nodes[Int(ino)].kind.directoryFileType)
        }
    }

    func renderDirectory(_ dir: UInt32, paths: () -> [UInt32: BytePath]) throws -> EXT4.DirectoryBlocks {
        do {
            return try EXT4.directoryBlocks(
                directoryEntries(dir), inode: dir, parent: nodes[Int(dir)].parent, checksumSeed: checksumSeed,
                hash: directoryHash, minimumBlocks: dir == EXT4.lostAndFoundInode ? 4 : 1)
        } catch EXT4.DirectoryLayoutError.tooManyEntries(let n) {
            throw Error.directoryTooLarge(path: paths()[dir] ?? BytePath("inode \(dir)"), entries: n)
        }
    }

    /// Writes all metadata and returns what was built. The writer cannot be used afterwards.
    public func close() throws -> Summary {
        guard !isClosed else { throw Error.closed }
        if let c = current { throw Error.fileStillOpen(path: c.path) }
        try flushPending()
        var cachedPaths: [UInt32: BytePath]?
        let paths: () -> [UInt32: BytePath] = { [unowned self] in
            if let p = cachedPaths { return p }
            let p = self.pathsByInode()
            cachedPaths = p
            return p
        }

        // What the metadata needs.
        var directories: [(UInt32, Int)] = []
        var xattrInodes: [UInt32] = []
        for ino in 2..<nodes.count where nodes[ino].live {
            if nodes[ino].kind == .directory {
                let entries = directoryEntries(UInt32(ino))
                let count: Int
                if ino == Int(EXT4.lostAndFoundInode) && EXT4.fitsLinear(entries) {
                    count = 4
                } else if EXT4.fitsLinear(entries) {
                    count = 1
                } else {
                    count = try renderDirectory(UInt32(ino), paths: paths).blocks.count
                }
                directories.append((UInt32(ino), count))
            }
            if let split = EXT4.splitXattrs(nodes[ino].xattrs), !split.block.isEmpty { xattrInodes.append(UInt32(ino)) }
        }

        // Geometry.
        let geometry: Geometry
        if let b = base?.placement {
            geometry = try baseGeometry(b, directories: directories, xattrInodes: xattrInodes)
        } else if let fixed = fixedBlocks {
            guard let g = fixedGeometry(blocks: fixed, directories: directories, xattrInodes: xattrInodes) else {
                // Report a size that does work: the automatic estimate, raised until the layout fits.
                var need = max(
                    try automaticGeometry(headroom: 0, directories: directories, xattrInodes: xattrInodes).blocks, fixed + 1)
                while fixedGeometry(blocks: need, directories: directories, xattrInodes: xattrInodes) == nil {
                    need += max(need / 32, 256)
                }
                throw Error.doesNotFit(
                    neededBytes: need * UInt64(EXT4.blockSize), availableBytes: fixed * UInt64(EXT4.blockSize))
            }
            geometry = g
        } else {
            geometry = try automaticGeometry(
                headroom: max(0, options.headroomPercent), directories: directories, xattrInodes: xattrInodes)
        }
        allocator.limit = geometry.blocks
        let layout = try plan(&allocator, geometry: geometry, directories: directories, xattrInodes: xattrInodes)
        isClosed = true

        // The placement record and the file map only read the tree, as writing the metadata does: a second
        // core builds them meanwhile. Nothing changes the tree until both are done.
        nonisolated(unsafe) let reader = self
        let side = SideWork()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            side.placement = reader.encodePlacement(geometry: geometry, layout: layout)
            side.fileMap = reader.fileMap()
        }
        let metadata: FreeCounts
        do {
            metadata = try writeMetadata(geometry: geometry, layout: layout, directories: directories, paths: paths)
        } catch {
            group.wait()
            throw error
        }
        group.wait()
        placementFile = side.placement
        // The file covers the filesystem, and at least the size that was asked for (a partial last group too
        // small to use is left out of the filesystem but not out of the file).
        try mapIO { try file.extend(toBlocks: max(geometry.blocks, fixedBlocks ?? 0)) }
        file.close()
        let summary = makeSummary(geometry: geometry, free: metadata, fileMap: side.fileMap)
        // The tree is not needed any more, and a large one is most of the writer's memory: the manifest that
        // follows should not have to share the machine with it.
        nodes = []
        return summary
    }

    /// What the second core builds while close() writes the metadata.
    final class SideWork: @unchecked Sendable {
        var placement: [UInt8] = []
        var fileMap = FileMap()
    }

    /// Totals gathered while writing the group descriptors.
    struct FreeCounts {
        var blocks: UInt64
        var inodes: UInt64
    }

    private func writeMetadata(
        geometry g: Geometry, layout p: Plan, directories: [(UInt32, Int)], paths: () -> [UInt32: BytePath]
    ) throws -> FreeCounts {
        // Directories.
        var directorySizes: [UInt32: (blocks: Int, indexed: Bool, root: [UInt8], tree: [UInt64])] = [:]
        for (dir, count) in directories {
            let rendered = try renderDirectory(dir, paths: paths)
            let runs = p.directoryRuns[dir] ?? []
            var physical: [UInt64] = []
            physical.reserveCapacity(count)
            for r in runs { physical.append(contentsOf: r) }
            for (k, block) in rendered.blocks.enumerated() where k < physical.count {
                try mapIO { try file.writeIfNonZero(block, atBlock: physical[k]) }
            }
            let treeBlocks = p.directoryTreeBlocks[dir] ?? []
            let tree = EXT4.buildExtentTree(
                Self.extents(fromRuns: runs), inode: dir, generation: 0, checksumSeed: checksumSeed,
                allocate: { _ in treeBlocks })
            for b in tree.blocks { try mapIO { try file.write(b.bytes, atBlock: b.block) } }
            directorySizes[dir] = (count, rendered.indexed, tree.root, treeBlocks)
        }

        // Extended attribute blocks.
        for (ino, block) in p.xattrBlocks {
            guard let split = EXT4.splitXattrs(nodes[Int(ino)].xattrs) else { continue }
            let bytes = EXT4.xattrBlock(split.block, blockNumber: block, checksumSeed: checksumSeed)
            try mapIO { try file.write(bytes, atBlock: block) }
        }

        // Journal: only its superblock; the log itself stays zero (a hole).
        let journalTree = EXT4.buildExtentTree(
            Self.extents(fromRuns: p.journalRuns), inode: EXT4.journalInode, generation: 0,
            checksumSeed: checksumSeed, allocate: { _ in p.journalTreeBlocks })
        for b in journalTree.blocks { try mapIO { try file.write(b.bytes, atBlock: b.block) } }
        if let first = p.journalRuns.first?.lowerBound {
            try mapIO { try file.write(journalSuperblock(blocks: g.journalBlocks), atBlock: first) }
        }
        var journal = EXT4.InodeImage()
        journal.mode = 0o100600
        journal.size = g.journalBlocks * UInt64(EXT4.blockSize)
        journal.linksCount = 1
        journal.sectors = (g.journalBlocks + UInt64(p.journalTreeBlocks.count)) * 8
        journal.flags = EXT4.InodeFlags.extents
        journal.blockArea = journalTree.root
        let t = options.defaultTime
        (journal.accessTime, journal.changeTime, journal.modificationTime, journal.creationTime) = (t, t, t, t)

        // Inode tables and inode bitmaps.
        let ipg = g.inodesPerGroup
        var freeInodes: [UInt64] = []
        var itableUnused: [UInt64] = []
        var directoriesPerGroup = [UInt64](repeating: 0, count: Int(g.groups))
        var inodeBitmapChecksums: [UInt32] = []
        var inodeUninit: [Bool] = []
        var emptyInodeBitmapChecksum: UInt32?
        for group in 0..<g.groups {
            let first = group * ipg + 1
            var bitmap = [UInt8](repeating: 0, count: EXT4.blockSize)
            var highest: UInt64 = 0
            var used: UInt64 = 0
            var table: [UInt8] = []
            // Only inodes handed out so far can be in use; later groups are empty.
            for ino in first..<max(first, min(first + ipg, UInt64(nodes.count))) {
                let isUsed: Bool
                if ino < UInt64(EXT4.firstNonReservedInode) {
                    isUsed = true
                } else {
                    isUsed = ino < UInt64(nodes.count) && nodes[Int(ino)].live
                }
                guard isUsed else { continue }
                let index = ino - first
                bitmap[Int(index / 8)] |= 1 << (index % 8)
                used += 1
                highest = index + 1
                let image: EXT4.InodeImage?
                if ino == UInt64(EXT4.journalInode) {
                    image = journal
                } else if ino < UInt64(EXT4.firstNonReservedInode) && ino != UInt64(EXT4.rootInode) {
                    image = nil
                } else {
                    image = inodeImage(UInt32(ino), directory: directorySizes[UInt32(ino)], xattrBlock: p.xattrBlocks[UInt32(ino)])
                }
                if nodes.indices.contains(Int(ino)), nodes[Int(ino)].live, nodes[Int(ino)].kind == .directory {
                    directoriesPerGroup[Int(group)] += 1
                }
                if let image {
                    let need = Int(index + 1) * EXT4.inodeSize
                    if table.count < need { table.append(contentsOf: [UInt8](repeating: 0, count: need - table.count)) }
                    table.replaceSubrange(
                        (Int(index) * EXT4.inodeSize)..<need,
                        with: image.encode(inode: UInt32(ino), checksumSeed: checksumSeed))
                }
            }
            // Pad the bitmap beyond the group's inodes.
            Self.setBits(&bitmap, ipg..<UInt64(8 * EXT4.blockSize), to: true)
            let table0 = p.inodeTables[Int(group)]
            var k = 0
            while k * EXT4.blockSize < table.count {
                var block = Array(table[(k * EXT4.blockSize)..<min((k + 1) * EXT4.blockSize, table.count)])
                if block.count < EXT4.blockSize { block.append(contentsOf: [UInt8](repeating: 0, count: EXT4.blockSize - block.count)) }
                try mapIO { try file.writeIfNonZero(block, atBlock: table0 + UInt64(k)) }
                k += 1
            }
            inodeUninit.append(used == 0)
            // Written even for INODE_UNINIT groups: e2fsck working from a backup superblock clears the UNINIT
            // flags and then expects the padding bits past the group's inodes to be set.
            try mapIO { try file.writeIfNonZero(bitmap, atBlock: p.inodeBitmaps[Int(group)]) }
            if used == 0, let c = emptyInodeBitmapChecksum {
                inodeBitmapChecksums.append(c)
            } else {
                let c = EXT4.crc32c(checksumSeed, bitmap[0..<Int(ipg / 8)])
                if used == 0 { emptyInodeBitmapChecksum = c }
                inodeBitmapChecksums.append(c)
            }
            freeInodes.append(ipg - used)
            itableUnused.append(ipg - highest)
        }

        // Block bitmaps: exactly the blocks something refers to, so that what was given up (a removed file,
        // the place of a base's file that did not come back, a stretch skipped for an inode table) is free.
        // The map covers the groups up to the last referenced block only: a large, mostly empty filesystem has
        // nothing past its metadata, and its bitmaps there are all free.
        // Two passes over what refers to blocks, the first for the last block, the second to mark them: no list
        // of a million runs in between.
        func forEachReferenced(_ mark: (Range<UInt64>) -> Void) {
            for ino in 2..<nodes.count where nodes[ino].live {
                nodes[ino].forEachExtent { mark($0.physical..<($0.physical + UInt64($0.length))) }
                for b in nodes[ino].treeBlocks { mark(b..<(b + 1)) }
            }
            for runs in p.directoryRuns.values { for r in runs { mark(r) } }
            for blocks in p.directoryTreeBlocks.values { for b in blocks { mark(b..<(b + 1)) } }
            for b in p.xattrBlocks.values { mark(b..<(b + 1)) }
            for r in p.journalRuns { mark(r) }
            for b in p.journalTreeBlocks { mark(b..<(b + 1)) }
            for group in 0..<Int(g.groups) {
                mark(p.blockBitmaps[group]..<(p.blockBitmaps[group] + 1))
                mark(p.inodeBitmaps[group]..<(p.inodeBitmaps[group] + 1))
                mark(p.inodeTables[group]..<(p.inodeTables[group] + g.inodeTableBlocks))
            }
        }
        var last: UInt64 = 0
        forEachReferenced { r in if !r.isEmpty { last = max(last, r.upperBound) } }
        let mappedGroups = min(g.groups, (last + EXT4.blocksPerGroup - 1) / EXT4.blocksPerGroup)
        var used = [UInt8](repeating: 0, count: Int(mappedGroups) * EXT4.blockSize)
        forEachReferenced { r in if !r.isEmpty { Self.setBits(&used, r, to: true) } }
        var freeBlocks: [UInt64] = []
        var blockBitmapChecksums: [UInt32] = []
        for group in 0..<g.groups {
            let start = group * EXT4.blocksPerGroup
            let end = min(start + EXT4.blocksPerGroup, g.blocks)
            let at = Int(group) * EXT4.blockSize
            var bitmap = group < mappedGroups ? Array(used[at..<(at + EXT4.blockSize)]) : [UInt8](repeating: 0, count: EXT4.blockSize)
            Self.setBits(&bitmap, 0..<EXT4.groupBaseBlocks(group), to: true)
            var usedCount: UInt64 = 0
            for byte in bitmap[0..<Int((end - start + 7) / 8)] { usedCount += UInt64(byte.nonzeroBitCount) }
            // Bits past the last block of the last group count as used padding.
            Self.setBits(&bitmap, (end - start)..<EXT4.blocksPerGroup, to: true)
            freeBlocks.append((end - start) - usedCount)
            blockBitmapChecksums.append(EXT4.crc32c(checksumSeed, bitmap))
            try mapIO { try file.writeIfNonZero(bitmap, atBlock: p.blockBitmaps[Int(group)]) }
        }

        // Group descriptors, in meta_bg layout: one block per 64 groups, copied to groups 0, 1 and 63 of its run.
        var descriptors: [[UInt8]] = []
        for group in 0..<g.groups {
            var d = EXT4.GroupDescriptor()
            d.blockBitmap = p.blockBitmaps[Int(group)]
            d.inodeBitmap = p.inodeBitmaps[Int(group)]
            d.inodeTable = p.inodeTables[Int(group)]
            d.freeBlocks = UInt32(freeBlocks[Int(group)])
            d.freeInodes = UInt32(freeInodes[Int(group)])
            d.usedDirectories = UInt32(directoriesPerGroup[Int(group)])
            d.flags = EXT4.GroupFlags.itableZeroed | (inodeUninit[Int(group)] ? EXT4.GroupFlags.inodeUninit : 0)
            d.blockBitmapChecksum = blockBitmapChecksums[Int(group)]
            d.inodeBitmapChecksum = inodeBitmapChecksums[Int(group)]
            d.itableUnused = UInt32(itableUnused[Int(group)])
            descriptors.append(d.encode(group: UInt32(group), checksumSeed: checksumSeed))
        }
        let perBlock = Int(EXT4.descriptorsPerBlock)
        let descriptorBlocks = (descriptors.count + perBlock - 1) / perBlock
        for i in 0..<descriptorBlocks {
            var block = [UInt8](repeating: 0, count: EXT4.blockSize)
            for (k, d) in descriptors[(i * perBlock)..<min((i + 1) * perBlock, descriptors.count)].enumerated() {
                block.putBytes(d, at: k * EXT4.descriptorSize)
            }
            for copy in [0, 1, perBlock - 1] {
                let group = UInt64(i * perBlock + copy)
                guard group < g.groups else { continue }
                let at = group * EXT4.blocksPerGroup + (EXT4.groupHasSuperblock(group) ? 1 : 0)
                try mapIO { try file.write(block, atBlock: at) }
            }
        }

        // Superblock and its backups.
        let totalFreeBlocks = freeBlocks.reduce(0, +)
        let totalFreeInodes = freeInodes.reduce(0, +)
        var sb = EXT4.Superblock()
        sb.inodesCount = UInt32(ipg * g.groups)
        sb.blocksCount = g.blocks
        sb.freeBlocksCount = totalFreeBlocks
        sb.freeInodesCount = UInt32(totalFreeInodes)
        sb.inodesPerGroup = UInt32(ipg)
        sb.writeTime = t.seconds
        sb.lastCheck = t.seconds
        sb.mkfsTime = t.seconds
        sb.featureCompat = EXT4.Compat.hasJournal | EXT4.Compat.extAttr | EXT4.Compat.dirIndex
        sb.featureIncompat = EXT4.Incompat.filetype | EXT4.Incompat.extents | EXT4.Incompat.bit64
            | EXT4.Incompat.flexBG | EXT4.Incompat.metaBG
        sb.featureROCompat = EXT4.ROCompat.sparseSuper | EXT4.ROCompat.largeFile | EXT4.ROCompat.hugeFile
            | EXT4.ROCompat.dirNlink | EXT4.ROCompat.extraIsize | EXT4.ROCompat.metadataCsum
        sb.uuid = uuid
        sb.volumeName = Array(Array(options.volumeName.utf8).prefix(16))
        while sb.volumeName.count < 16 { sb.volumeName.append(0) }
        sb.journalInode = EXT4.journalInode
        sb.hashSeed = hashSeed
        sb.defaultHashVersion = options.hashVersion.rawValue
        sb.journalBackupType = 1
        sb.defaultMountOptions = 0x000C  // user_xattr, acl
        sb.firstMetaBG = 0
        var jnl = [UInt32](repeating: 0, count: 17)
        for i in 0..<15 { jnl[i] = journalTree.root.le32(at: i * 4) }
        jnl[15] = UInt32(truncatingIfNeeded: journal.size >> 32)
        jnl[16] = UInt32(truncatingIfNeeded: journal.size)
        sb.journalBlocks = jnl
        sb.minExtraIsize = EXT4.extraInodeSize
        sb.wantExtraIsize = EXT4.extraInodeSize
        sb.flags = EXT4.Superblock.unsignedHashFlag
        sb.logGroupsPerFlex = EXT4.logGroupsPerFlex
        sb.checksumType = 1
        for group in 0..<g.groups where EXT4.groupHasSuperblock(group) {
            sb.blockGroupNumber = UInt16(truncatingIfNeeded: group)
            let bytes = sb.encode()
            if group == 0 {
                try mapIO { try bytes.withUnsafeBytes { try file.write($0, atByte: 1024) } }
            } else {
                var block = bytes
                block.append(contentsOf: [UInt8](repeating: 0, count: EXT4.blockSize - block.count))
                try mapIO { try file.write(block, atBlock: group * EXT4.blocksPerGroup) }
            }
        }
        return FreeCounts(blocks: totalFreeBlocks, inodes: totalFreeInodes)
    }

    /// The on-disk inode of a live node.
    private func inodeImage(
        _ ino: UInt32, directory: (blocks: Int, indexed: Bool, root: [UInt8], tree: [UInt64])?, xattrBlock: UInt64?
    ) -> EXT4.InodeImage {
        let n = nodes[Int(ino)]
        var i = EXT4.InodeImage()
        i.mode = n.kind.modeBits | n.metadata.permissions
        i.uid = n.metadata.uid
        i.gid = n.metadata.gid
        i.accessTime = n.metadata.accessTime
        i.changeTime = n.metadata.changeTime
        i.modificationTime = n.metadata.modificationTime
        i.creationTime = n.metadata.creationTime
        var blocks: UInt64 = 0
        switch n.kind {
        case .directory:
            let links = 2 + n.subdirectories
            i.linksCount = links >= EXT4.linkMax ? 1 : UInt16(links)
            if let d = directory {
                i.size = UInt64(d.blocks) * UInt64(EXT4.blockSize)
                i.flags = EXT4.InodeFlags.extents | (d.indexed ? EXT4.InodeFlags.index : 0)
                i.blockArea = d.root
                blocks = UInt64(d.blocks + d.tree.count)
            }
        case .regular:
            i.linksCount = UInt16(n.links)
            i.size = n.size
            i.flags = EXT4.InodeFlags.extents
            i.blockArea = n.treeRoot ?? EXT4.buildExtentTree(
                n.extents, inode: ino, generation: 0, checksumSeed: checksumSeed, allocate: { _ in [] }).root
            blocks = n.dataBlocks + UInt64(n.treeBlocks.count)
        case .symlink:
            i.linksCount = UInt16(n.links)
            let target = n.symlinkTarget ?? []
            i.size = UInt64(target.count)
            if target.count < 60 {
                i.blockArea.putBytes(target, at: 0)
            } else {
                i.flags = EXT4.InodeFlags.extents
                i.blockArea = EXT4.buildExtentTree(
                    n.extents, inode: ino, generation: 0, checksumSeed: checksumSeed, allocate: { _ in [] }).root
                blocks = n.dataBlocks
            }
        case .characterDevice, .blockDevice:
            i.linksCount = UInt16(n.links)
            let d = n.device ?? EXT4.DeviceNumber(major: 0, minor: 0)
            if d.major < 256 && d.minor < 256 {
                i.blockArea.putLE32(d.major << 8 | d.minor, at: 0)
            } else {
                i.blockArea.putLE32((d.minor & 0xFF) | (d.major << 8) | ((d.minor & ~0xFF) << 12), at: 4)
            }
        case .fifo, .socket:
            i.linksCount = UInt16(n.links)
        }
        if let split = EXT4.splitXattrs(n.xattrs) {
            i.xattrArea = EXT4.inodeXattrArea(split.inode)
            if let xattrBlock, !split.block.isEmpty {
                i.xattrBlock = xattrBlock
                blocks += 1
            }
        }
        i.sectors = blocks * UInt64(EXT4.blockSize / 512)
        return i
    }

    /// The jbd2 superblock (v2, big-endian) of an empty, clean internal journal.
    private func journalSuperblock(blocks: UInt64) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: EXT4.blockSize)
        b.putBE32(0xC03B_3998, at: 0x00)
        b.putBE32(4, at: 0x04)  // superblock v2
        b.putBE32(UInt32(EXT4.blockSize), at: 0x0C)
        b.putBE32(UInt32(blocks), at: 0x10)
        b.putBE32(1, at: 0x14)  // s_first
        b.putBE32(1, at: 0x18)  // s_sequence
        b.putBytes(uuid, at: 0x30)
        b.putBE32(1, at: 0x40)  // s_nr_users
        return b
    }

    static func setBits(_ bitmap: inout [UInt8], _ range: Range<UInt64>, to value: Bool) {
        var bit = range.lowerBound
        while bit < range.upperBound {
            if bit % 8 == 0 && range.upperBound - bit >= 8 {
                bitmap[Int(bit / 8)] = value ? 0xFF : 0
                bit += 8
                continue
            }
            if value {
                bitmap[Int(bit / 8)] |= 1 << (bit % 8)
            } else {
                bitmap[Int(bit / 8)] &= ~(1 << (bit % 8))
            }
            bit += 1
        }
    }
}
