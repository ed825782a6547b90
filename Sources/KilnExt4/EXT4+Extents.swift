/// Extent trees: the inode's four-slot root, index and leaf blocks of any depth, and their parsing.
extension EXT4 {
    /// A run of contiguous blocks: `length` blocks of a file from logical block `logical` at `physical`.
    struct Extent: Hashable, Sendable {
        var logical: UInt32
        var physical: UInt64
        var length: UInt32
    }

    static let extentMagic: UInt16 = 0xF30A
    /// The longest initialized extent.
    static let maximumExtentLength: UInt32 = 32768
    static let extentsInInode = 4
    static let extentsPerBlock = (blockSize - 12) / 12

    /// One node's header and 12-byte entries: leaf entries are extents, index entries point at child blocks.
    private static func encodeNode(
        into b: inout [UInt8], max: Int, depth: UInt16, leaves: [Extent], index: [(logical: UInt32, child: UInt64)]
    ) {
        b.putLE16(extentMagic, at: 0)
        b.putLE16(UInt16(depth == 0 ? leaves.count : index.count), at: 2)
        b.putLE16(UInt16(max), at: 4)
        b.putLE16(depth, at: 6)
        var o = 12
        if depth == 0 {
            for e in leaves {
                b.putLE32(e.logical, at: o)
                b.putLE16(UInt16(truncatingIfNeeded: e.length), at: o + 4)
                b.putLE16(UInt16(truncatingIfNeeded: e.physical >> 32), at: o + 6)
                b.putLE32(UInt32(truncatingIfNeeded: e.physical), at: o + 8)
                o += 12
            }
        } else {
            for e in index {
                b.putLE32(e.logical, at: o)
                b.putLE32(UInt32(truncatingIfNeeded: e.child), at: o + 4)
                b.putLE16(UInt16(truncatingIfNeeded: e.child >> 32), at: o + 8)
                o += 12
            }
        }
    }

    /// The number of index and leaf blocks a tree over `count` extents needs.
    static func extentTreeBlockCount(_ count: Int) -> Int {
        if count <= extentsInInode { return 0 }
        var total = 0
        var level = count
        repeat {
            level = (level + extentsPerBlock - 1) / extentsPerBlock
            total += level
        } while level > extentsInInode
        return total
    }

    /// Builds the extent tree over `extents` (sorted, non-overlapping): the 60-byte `i_block` root plus the
    /// index/leaf blocks it needs, placed at the blocks `allocate` returns. Nodes are packed full, so the tree
    /// is as shallow and narrow as possible.
    static func buildExtentTree(
        _ extents: [Extent], inode: UInt32, generation: UInt32, checksumSeed: UInt32,
        allocate: (Int) throws -> [UInt64]
    ) rethrows -> (root: [UInt8], blocks: [(block: UInt64, bytes: [UInt8])]) {
        var root = [UInt8](repeating: 0, count: 60)
        if extents.count <= extentsInInode {
            encodeNode(into: &root, max: extentsInInode, depth: 0, leaves: extents, index: [])
            return (root, [])
        }
        let seed = crc32c(crc32c(checksumSeed, le32: inode), le32: generation)
        func finishBlock(_ b: inout [UInt8]) {
            let tail = 12 + extentsPerBlock * 12
            b.putLE32(crc32c(seed, b[0..<tail]), at: tail)
        }
        var out: [(block: UInt64, bytes: [UInt8])] = []
        // Leaves.
        var chunks: [[Extent]] = []
        var i = 0
        while i < extents.count {
            chunks.append(Array(extents[i..<min(i + extentsPerBlock, extents.count)]))
            i += extentsPerBlock
        }
        var numbers = try allocate(chunks.count)
        var level: [(logical: UInt32, child: UInt64)] = []
        for (n, chunk) in chunks.enumerated() {
            var b = [UInt8](repeating: 0, count: blockSize)
            encodeNode(into: &b, max: extentsPerBlock, depth: 0, leaves: chunk, index: [])
            finishBlock(&b)
            out.append((numbers[n], b))
            level.append((chunk[0].logical, numbers[n]))
        }
        var depth: UInt16 = 1
        while level.count > extentsInInode {
            var parents: [[(logical: UInt32, child: UInt64)]] = []
            var j = 0
            while j < level.count {
                parents.append(Array(level[j..<min(j + extentsPerBlock, level.count)]))
                j += extentsPerBlock
            }
            numbers = try allocate(parents.count)
            var next: [(logical: UInt32, child: UInt64)] = []
            for (n, p) in parents.enumerated() {
                var b = [UInt8](repeating: 0, count: blockSize)
                encodeNode(into: &b, max: extentsPerBlock, depth: depth, leaves: [], index: p)
                finishBlock(&b)
                out.append((numbers[n], b))
                next.append((p[0].logical, numbers[n]))
            }
            level = next
            depth += 1
        }
        encodeNode(into: &root, max: extentsInInode, depth: depth, leaves: [], index: level)
        return (root, out)
    }

    /// A parsed extent node: its depth and either leaf extents or child block pointers.
    struct ExtentNode {
        var depth: Int
        var leaves: [Extent]
        var children: [(logical: UInt32, block: UInt64)]
    }

    /// Parses an extent node (the inode root or a tree block); nil when the magic or counts are wrong.
    static func parseExtentNode(_ b: [UInt8]) -> ExtentNode? {
        guard b.count >= 12, b.le16(at: 0) == extentMagic else { return nil }
        let entries = Int(b.le16(at: 2))
        let depth = Int(b.le16(at: 6))
        guard 12 + entries * 12 <= b.count else { return nil }
        var node = ExtentNode(depth: depth, leaves: [], children: [])
        for k in 0..<entries {
            let o = 12 + k * 12
            if depth == 0 {
                var len = UInt32(b.le16(at: o + 4))
                // Lengths above 32768 mark unwritten (preallocated) extents; they read as zeros.
                let unwritten = len > maximumExtentLength
                if unwritten { len -= maximumExtentLength }
                let phys = UInt64(b.le16(at: o + 6)) << 32 | UInt64(b.le32(at: o + 8))
                node.leaves.append(Extent(logical: b.le32(at: o), physical: unwritten ? 0 : phys, length: len))
            } else {
                let child = UInt64(b.le16(at: o + 8)) << 32 | UInt64(b.le32(at: o + 4))
                node.children.append((b.le32(at: o), child))
            }
        }
        return node
    }
}
