/// Directory blocks: a single linear block for small directories, an htree (dir_index) with one or two index
/// levels beyond, each block carrying its metadata_csum tail.
extension EXT4 {
    struct DirectoryEntry {
        var name: [UInt8]
        var inode: UInt32
        var fileType: UInt8

        var recordLength: Int { (8 + name.count + 3) & ~3 }
    }

    /// Directory contents rendered as blocks in logical order.
    struct DirectoryBlocks {
        var blocks: [[UInt8]]
        var indexed: Bool
    }

    enum DirectoryLayoutError: Error {
        case tooManyEntries(Int)
    }

    static let directoryTailSize = 12
    static let dxRootLimit = (blockSize - 32 - 8) / 8
    static let dxNodeLimit = (blockSize - 8 - 8) / 8

    private static func putEntry(_ b: inout [UInt8], at o: Int, inode: UInt32, recLen: Int, name: [UInt8], type: UInt8) {
        b.putLE32(inode, at: o)
        b.putLE16(UInt16(recLen), at: o + 4)
        b[o + 6] = UInt8(name.count)
        b[o + 7] = type
        b.putBytes(name, at: o + 8)
    }

    /// Adds the 12-byte checksum tail (`struct ext4_dir_entry_tail`) to a leaf block.
    private static func sealLeaf(_ b: inout [UInt8], seed: UInt32) {
        let t = blockSize - directoryTailSize
        b.putLE32(0, at: t)
        b.putLE16(UInt16(directoryTailSize), at: t + 4)
        b[t + 6] = 0
        b[t + 7] = 0xDE
        b.putLE32(crc32c(seed, b[0..<t]), at: t + 8)
    }

    /// Sets the `struct dx_tail` checksum of a root or node block whose count/limit header is at `countOffset`.
    private static func sealIndex(_ b: inout [UInt8], countOffset: Int, seed: UInt32) {
        let limit = Int(b.le16(at: countOffset))
        let count = Int(b.le16(at: countOffset + 2))
        let tail = countOffset + limit * 8
        b.putLE32(0, at: tail)
        b.putLE32(0, at: tail + 4)
        var crc = crc32c(seed, b[0..<(countOffset + count * 8)])
        crc = crc32c(crc, b[tail..<(tail + 8)])
        b.putLE32(crc, at: tail + 4)
    }

    /// Packs entries (in the given order) into leaf blocks; returns the blocks and the index of each block's
    /// first entry.
    private static func packLeaves(_ entries: [DirectoryEntry], firstBlockUsed: Int, prefix: [UInt8]?) -> (blocks: [[UInt8]], firsts: [Int]) {
        let capacity = blockSize - directoryTailSize
        var blocks: [[UInt8]] = []
        var firsts: [Int] = []
        var current = prefix ?? [UInt8](repeating: 0, count: blockSize)
        var used = prefix == nil ? 0 : firstBlockUsed
        var lastOffset = prefix == nil ? -1 : firstBlockUsed - 12
        var first = 0
        func close(_ b: inout [UInt8]) {
            if lastOffset < 0 {
                // An empty block: one unused entry spanning it.
                b.putLE32(0, at: 0)
                b.putLE16(UInt16(capacity), at: 4)
            } else {
                b.putLE16(UInt16(capacity - lastOffset), at: lastOffset + 4)
            }
        }
        for (n, e) in entries.enumerated() {
            let len = e.recordLength
            if used + len > capacity {
                close(&current)
                blocks.append(current)
                firsts.append(first)
                current = [UInt8](repeating: 0, count: blockSize)
                used = 0
                lastOffset = -1
                first = n
            }
            putEntry(&current, at: used, inode: e.inode, recLen: len, name: e.name, type: e.fileType)
            lastOffset = used
            used += len
        }
        close(&current)
        blocks.append(current)
        firsts.append(first)
        return (blocks, firsts)
    }

    /// True when "." + ".." + entries fit in one block with its checksum tail.
    static func fitsLinear(_ entries: [DirectoryEntry]) -> Bool {
        var used = 24
        for e in entries {
            used += e.recordLength
            if used > blockSize - directoryTailSize { return false }
        }
        return true
    }

    /// Renders a directory. `entries` exclude "." and "..". `minimumBlocks` pads a linear directory with empty
    /// blocks (lost+found keeps spare blocks, as mkfs makes it).
    static func directoryBlocks(
        _ entries: [DirectoryEntry], inode: UInt32, parent: UInt32, checksumSeed: UInt32,
        hash: DirectoryHash, minimumBlocks: Int = 1
    ) throws -> DirectoryBlocks {
        let seed = crc32c(crc32c(checksumSeed, le32: inode), le32: 0)
        if fitsLinear(entries) {
            var first = [UInt8](repeating: 0, count: blockSize)
            putEntry(&first, at: 0, inode: inode, recLen: 12, name: [0x2E], type: 2)
            putEntry(&first, at: 12, inode: parent, recLen: 12, name: [0x2E, 0x2E], type: 2)
            let sorted = entries.sorted { $0.name.lexicographicallyPrecedes($1.name) }
            var blocks = packLeaves(sorted, firstBlockUsed: 24, prefix: first).blocks
            while blocks.count < minimumBlocks {
                blocks.append(packLeaves([], firstBlockUsed: 0, prefix: nil).blocks[0])
            }
            for i in blocks.indices { sealLeaf(&blocks[i], seed: seed) }
            return DirectoryBlocks(blocks: blocks, indexed: false)
        }

        // Hash order, collisions kept together by the minor hash and then the name.
        var hashed: [(major: UInt32, minor: UInt32, entry: DirectoryEntry)] = entries.map {
            let h = hash.hash($0.name)
            return (h.major, h.minor, $0)
        }
        hashed.sort {
            if $0.major != $1.major { return $0.major < $1.major }
            if $0.minor != $1.minor { return $0.minor < $1.minor }
            return $0.entry.name.lexicographicallyPrecedes($1.entry.name)
        }
        var (leaves, firsts) = packLeaves(hashed.map(\.entry), firstBlockUsed: 0, prefix: nil)
        for i in leaves.indices { sealLeaf(&leaves[i], seed: seed) }

        // The starting hash of each leaf; the low bit says a hash run continues from the previous leaf.
        var leafHashes: [UInt32] = []
        for (k, f) in firsts.enumerated() {
            var h = hashed[f].major
            if k > 0, hashed[f - 1].major == h { h |= 1 }
            leafHashes.append(h)
        }

        let levels: UInt8
        var nodes: [[UInt8]] = []
        var rootEntries: [(hash: UInt32, block: UInt32)] = []
        if leaves.count <= dxRootLimit {
            levels = 0
            for k in leaves.indices { rootEntries.append((leafHashes[k], UInt32(1 + k))) }
        } else {
            let nodeCount = (leaves.count + dxNodeLimit - 1) / dxNodeLimit
            guard nodeCount <= dxRootLimit else { throw DirectoryLayoutError.tooManyEntries(entries.count) }
            levels = 1
            let leafBase = 1 + nodeCount
            for n in 0..<nodeCount {
                let lo = n * dxNodeLimit
                let hi = min(lo + dxNodeLimit, leaves.count)
                var b = [UInt8](repeating: 0, count: blockSize)
                b.putLE32(0, at: 0)
                b.putLE16(UInt16(blockSize), at: 4)
                b.putLE16(UInt16(dxNodeLimit), at: 8)
                b.putLE16(UInt16(hi - lo), at: 10)
                b.putLE32(UInt32(leafBase + lo), at: 12)
                var o = 16
                for k in (lo + 1)..<max(hi, lo + 1) where k < hi {
                    b.putLE32(leafHashes[k], at: o)
                    b.putLE32(UInt32(leafBase + k), at: o + 4)
                    o += 8
                }
                sealIndex(&b, countOffset: 8, seed: seed)
                nodes.append(b)
                rootEntries.append((leafHashes[lo], UInt32(1 + n)))
            }
        }

        var root = [UInt8](repeating: 0, count: blockSize)
        putEntry(&root, at: 0, inode: inode, recLen: 12, name: [0x2E], type: 2)
        putEntry(&root, at: 12, inode: parent, recLen: blockSize - 12, name: [0x2E, 0x2E], type: 2)
        root[24 + 4] = hash.version.rawValue
        root[24 + 5] = 8
        root[24 + 6] = levels
        root.putLE16(UInt16(dxRootLimit), at: 32)
        root.putLE16(UInt16(rootEntries.count), at: 34)
        root.putLE32(rootEntries[0].block, at: 36)
        var o = 40
        for e in rootEntries.dropFirst() {
            root.putLE32(e.hash, at: o)
            root.putLE32(e.block, at: o + 4)
            o += 8
        }
        sealIndex(&root, countOffset: 32, seed: seed)
        // With one index level the leaf numbers already account for the node blocks.
        if levels == 0 {
            return DirectoryBlocks(blocks: [root] + leaves, indexed: true)
        }
        return DirectoryBlocks(blocks: [root] + nodes + leaves, indexed: true)
    }
}
