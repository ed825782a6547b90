import KilnCore

/// Directory walking, path lookup, file contents, symlink targets and extended attributes.
extension EXT4Reader {
    /// The extents of inode `ino` in logical order (extent trees of any depth).
    public func extents(inode ino: UInt32) throws -> [(logical: UInt32, physical: UInt64, length: UInt32)] {
        let (i, _) = try inode(ino)
        return try extents(of: i, ino: ino).map { ($0.logical, $0.physical, $0.length) }
    }

    func extents(of i: EXT4.InodeImage, ino: UInt32) throws -> [EXT4.Extent] {
        guard i.flags & EXT4.InodeFlags.extents != 0 else {
            if i.size == 0 || i.sectors == 0 { return [] }
            throw Error.unsupported("inode \(ino) uses block maps instead of extents")
        }
        guard let root = EXT4.parseExtentNode(i.blockArea) else { throw Error.corrupt("inode \(ino) has a bad extent header") }
        var out: [EXT4.Extent] = []
        // Depth-first over index nodes; a bound on the depth, and each tree block read once, keep corrupt
        // loops and shared subtrees finite (at most one read per block of the filesystem).
        var pending: [(EXT4.ExtentNode, Int)] = [(root, 0)]
        var treeBlocks: Set<UInt64> = []
        while let (node, level) = pending.popLast() {
            guard level <= 5 else { throw Error.corrupt("inode \(ino) has an extent tree deeper than 5") }
            if node.depth == 0 {
                for leaf in node.leaves {
                    let (_, past) = leaf.physical.addingReportingOverflow(UInt64(leaf.length))
                    guard UInt64(leaf.logical) + UInt64(leaf.length) <= UInt64(UInt32.max) + 1, !past,
                          leaf.physical == 0 || leaf.physical + UInt64(leaf.length) <= info.blockCount else {
                        throw Error.corrupt("inode \(ino) has an extent (logical \(leaf.logical), \(leaf.length) blocks at \(leaf.physical)) beyond the filesystem's \(info.blockCount) blocks")
                    }
                }
                out.append(contentsOf: node.leaves)
                continue
            }
            for child in node.children.reversed() {
                guard treeBlocks.insert(child.block).inserted else {
                    throw Error.corrupt("inode \(ino)'s extent tree reaches block \(child.block) twice")
                }
                guard let c = EXT4.parseExtentNode(try readBlock(child.block)), c.depth == node.depth - 1 else {
                    throw Error.corrupt("inode \(ino) has a bad extent block \(child.block)")
                }
                pending.append((c, level + 1))
            }
        }
        return out
    }

    /// Calls `body` with each of the inode's blocks in logical order (holes skipped).
    func forEachBlock(of i: EXT4.InodeImage, ino: UInt32, _ body: (UInt64, [UInt8]) throws -> Bool) throws {
        // Directories and symlinks are read whole: never more blocks than their size holds, nor than the
        // filesystem has (extents of a damaged inode may overlap or repeat).
        let bs = UInt64(blockSize)
        let budget = min(i.size / bs + (i.size % bs == 0 ? 0 : 1), info.blockCount)
        var visited: UInt64 = 0
        for e in try extents(of: i, ino: ino) {
            for k in 0..<UInt64(e.length) {
                visited += 1
                guard visited <= budget else {
                    throw Error.corrupt("inode \(ino)'s extents map more blocks than its size of \(i.size) bytes holds")
                }
                let data = e.physical == 0 ? [UInt8](repeating: 0, count: blockSize) : try readBlock(e.physical + k)
                if try !body(UInt64(e.logical) + k, data) { return }
            }
        }
    }

    /// All entries of directory inode `ino` except "." and "..", in on-disk order.
    public func list(inode ino: UInt32) throws -> [DirectoryEntry] {
        let (i, _) = try inode(ino)
        guard EXT4.FileKind(mode: i.mode) == .directory else { throw Error.notADirectory(path: "inode \(ino)") }
        var out: [DirectoryEntry] = []
        try forEachBlock(of: i, ino: ino) { _, block in
            for e in parseDirectoryBlock(block) where e.nameBytes != [0x2E] && e.nameBytes != [0x2E, 0x2E] {
                out.append(e)
            }
            return true
        }
        return out
    }

    /// Entries of one directory block; index blocks (one empty entry spanning the block) yield none.
    func parseDirectoryBlock(_ block: [UInt8]) -> [DirectoryEntry] {
        var out: [DirectoryEntry] = []
        var o = 0
        while o + 8 <= block.count {
            let ino = block.le32(at: o)
            var rec = Int(block.le16(at: o + 4))
            if rec == 0 && blockSize == 65536 { rec = 65536 }
            let nameLen = Int(block[o + 6])
            let type = block[o + 7]
            guard rec >= 8, o + rec <= block.count else { break }
            if ino != 0 && nameLen > 0 && o + 8 + nameLen <= block.count {
                let name = Array(block[(o + 8)..<(o + 8 + nameLen)])
                let kind: EXT4.FileKind? = switch type {
                case 1: .regular
                case 2: .directory
                case 3: .characterDevice
                case 4: .blockDevice
                case 5: .fifo
                case 6: .socket
                case 7: .symlink
                default: nil
                }
                out.append(DirectoryEntry(name: String(decoding: name, as: UTF8.self), nameBytes: name, inode: ino, kind: kind))
            }
            o += rec
        }
        return out
    }

    /// The entries of the directory at `path` (symlinks followed), sorted by name.
    public func list(_ path: String) throws -> [DirectoryEntry] { try list(BytePath(path)) }

    /// The entries of the directory at `path`, given as bytes (symlinks followed), sorted by name.
    public func list(_ path: BytePath) throws -> [DirectoryEntry] {
        let ino = try resolve(path, followFinal: true)
        return try list(inode: ino).sorted { $0.nameBytes.lexicographicallyPrecedes($1.nameBytes) }
    }

    /// Looks `name` up in directory `dir`: through the hash index when the directory has one.
    func lookup(_ name: [UInt8], in dir: UInt32) throws -> UInt32? {
        let (i, _) = try inode(dir)
        if i.flags & EXT4.InodeFlags.index != 0, let found = try htreeLookup(name, in: dir) {
            return found
        }
        var found: UInt32?
        try forEachBlock(of: i, ino: dir) { _, block in
            for e in parseDirectoryBlock(block) where e.nameBytes == name {
                found = e.inode
                return false
            }
            return true
        }
        return found
    }

    /// Finds `name` by walking the htree index alone (nil when the index does not lead to it).
    func htreeLookup(_ name: [UInt8], in dir: UInt32) throws -> UInt32? {
        let (i, _) = try inode(dir)
        let extents = try extents(of: i, ino: dir)
        func physical(_ logical: UInt32) -> UInt64? {
            for e in extents where logical >= e.logical && UInt64(logical) < UInt64(e.logical) + UInt64(e.length) {
                return e.physical + UInt64(logical - e.logical)
            }
            return nil
        }
        guard let rootBlock = physical(0) else { return nil }
        let root = try readBlock(rootBlock)
        let version = EXT4.HashVersion(rawValue: root[28]) ?? .halfMD4
        let levels = Int(root[30])
        // An index of more than 3 levels (largedir) is not one kiln reads; the plain scan is used instead.
        guard levels <= 2 else { return nil }
        var hash = sb.directoryHash
        hash.version = version
        let target = hash.hash(name).major
        var block = root
        var countOffset = 24 + Int(root[29])
        var leaf: UInt32 = 0
        var following: [(hash: UInt32, block: UInt32)] = []
        for level in 0...levels {
            guard countOffset + 8 <= block.count else { return nil }
            let count = Int(block.le16(at: countOffset + 2))
            // The entries must fit their block; a damaged count falls back to the plain scan.
            guard count >= 1, countOffset + 8 * count <= block.count else { return nil }
            var chosen = block.le32(at: countOffset + 4)
            following = []
            for k in 1..<max(count, 1) {
                let h = block.le32(at: countOffset + 8 * k)
                if h > target {
                    for j in k..<count { following.append((block.le32(at: countOffset + 8 * j), block.le32(at: countOffset + 8 * j + 4))) }
                    break
                }
                chosen = block.le32(at: countOffset + 8 * k + 4)
            }
            if level == levels {
                leaf = chosen
            } else {
                guard let p = physical(chosen) else { return nil }
                block = try readBlock(p)
                countOffset = 8
            }
        }
        // A run of equal hashes may continue in the following leaf (marked by the low bit).
        var candidate = leaf
        var next = 0
        while true {
            guard let p = physical(candidate) else { return nil }
            if let e = parseDirectoryBlock(try readBlock(p)).first(where: { $0.nameBytes == name }) { return e.inode }
            guard next < following.count, following[next].hash & ~1 == target, following[next].hash & 1 == 1 else {
                return nil
            }
            candidate = following[next].block
            next += 1
        }
    }

    /// Resolves `path` from the root; symlinks in the middle are followed, the last one when `followFinal`.
    public func resolve(_ path: String, followFinal: Bool = false) throws -> UInt32 {
        try resolve(BytePath(path), followFinal: followFinal)
    }

    /// Resolves `path`, as the bytes a layer named it with (names need not be UTF-8), from the root.
    public func resolve(_ path: BytePath, followFinal: Bool = false) throws -> UInt32 {
        var stack: [UInt32] = [EXT4.rootInode]
        var queue = Array(path.bytes.split(separator: 0x2F).map(Array.init).filter { $0 != [0x2E] }.reversed())
        var followed = 0
        while let c = queue.popLast() {
            if c == [0x2E, 0x2E] {
                if stack.count > 1 { stack.removeLast() }
                continue
            }
            let dir = stack[stack.count - 1]
            guard let child = try lookup(c, in: dir) else { throw Error.notFound(path: path.description) }
            let st = try stat(inode: child)
            if st.kind == .symlink && (!queue.isEmpty || followFinal) {
                followed += 1
                guard followed <= 40 else { throw Error.symlinkLoop(path: path.description) }
                let target = try readSymlink(inode: child)
                if target.first == 0x2F { stack = [EXT4.rootInode] }
                queue.append(contentsOf: target.split(separator: 0x2F).map(Array.init).filter { $0 != [0x2E] }.reversed())
                continue
            }
            if !queue.isEmpty && st.kind != .directory { throw Error.notADirectory(path: path.description) }
            stack.append(child)
        }
        return stack[stack.count - 1]
    }

    /// Metadata of what `path` names.
    public func stat(_ path: String, followSymlinks: Bool = false) throws -> Stat {
        try stat(BytePath(path), followSymlinks: followSymlinks)
    }

    /// Metadata of what `path` (bytes) names.
    public func stat(_ path: BytePath, followSymlinks: Bool = false) throws -> Stat {
        try stat(inode: resolve(path, followFinal: followSymlinks))
    }

    /// The bytes of the regular file at `path` from `offset`, at most `length` bytes (the rest of the file
    /// when nil). Holes read as zeros.
    public func readFile(_ path: String, offset: UInt64 = 0, length: Int? = nil) throws -> [UInt8] {
        try readFile(BytePath(path), offset: offset, length: length)
    }

    /// The bytes of the regular file at `path` (bytes), as the String form does.
    public func readFile(_ path: BytePath, offset: UInt64 = 0, length: Int? = nil) throws -> [UInt8] {
        try readFile(inode: resolve(path, followFinal: true), offset: offset, length: length)
    }

    public func readFile(inode ino: UInt32, offset: UInt64 = 0, length: Int? = nil) throws -> [UInt8] {
        let (i, _) = try inode(ino)
        guard EXT4.FileKind(mode: i.mode) == .regular else { throw Error.notARegularFile(path: "inode \(ino)") }
        guard offset < i.size else { return [] }
        let count = Int(min(UInt64(length ?? Int.max), i.size - offset))
        var out = [UInt8](repeating: 0, count: count)
        let end = offset + UInt64(count)
        let bs = UInt64(blockSize)
        for e in try extents(of: i, ino: ino) where e.physical != 0 {
            let eStart = UInt64(e.logical) * bs
            let eEnd = eStart + UInt64(e.length) * bs
            let lo = max(eStart, offset)
            let hi = min(eEnd, end)
            guard lo < hi else { continue }
            // Read in chunks of up to 8 MiB.
            var pos = lo
            while pos < hi {
                let n = Int(min(hi - pos, 8 << 20))
                let physByte = e.physical * bs + (pos - eStart)
                let chunk: [UInt8]
                do {
                    chunk = try file.read(atByte: physByte, count: n)
                } catch EXT4.ImageFile.Failure.io(let op, let p, let e) {
                    throw Error.io(operation: op, path: p, errno: e)
                }
                out.replaceSubrange(Int(pos - offset)..<(Int(pos - offset) + n), with: chunk)
                pos += UInt64(n)
            }
        }
        return out
    }

    /// The target of the symlink at `path`.
    public func readSymlink(_ path: String) throws -> String {
        String(decoding: try readSymlink(BytePath(path)), as: UTF8.self)
    }

    /// The target of the symlink at `path` (bytes), as the bytes it holds.
    public func readSymlink(_ path: BytePath) throws -> [UInt8] {
        try readSymlink(inode: resolve(path, followFinal: false))
    }

    /// The target of symlink inode `ino`, as the bytes it holds.
    public func readSymlink(inode ino: UInt32) throws -> [UInt8] {
        let (i, _) = try inode(ino)
        guard EXT4.FileKind(mode: i.mode) == .symlink else { throw Error.notASymlink(path: "inode \(ino)") }
        // A symlink's target is a path: Linux refuses targets of 4096 bytes or more.
        guard i.size < 4096 else { throw Error.corrupt("symlink inode \(ino) claims a target of \(i.size) bytes") }
        let size = Int(i.size)
        if i.flags & EXT4.InodeFlags.extents == 0 && size < 60 {
            return Array(i.blockArea.prefix(size))
        }
        var out: [UInt8] = []
        try forEachBlock(of: i, ino: ino) { _, block in
            out.append(contentsOf: block)
            return out.count < size
        }
        return Array(out.prefix(size))
    }

    /// The extended attributes of what `path` names (final symlink not followed), by full name. POSIX ACLs
    /// come back in the xattr interface format.
    public func xattrs(_ path: String) throws -> [String: [UInt8]] {
        try xattrs(BytePath(path))
    }

    /// The extended attributes of what `path` (bytes) names.
    public func xattrs(_ path: BytePath) throws -> [String: [UInt8]] {
        try xattrs(inode: resolve(path, followFinal: false))
    }

    public func xattrs(inode ino: UInt32) throws -> [String: [UInt8]] {
        let (i, _) = try inode(ino)
        var all: [EXT4.Xattr] = []
        if i.xattrArea.count >= 4, i.xattrArea.le32(at: 0) == EXT4.xattrMagic {
            all += EXT4.decodeXattrEntries(i.xattrArea, entriesStart: 4, offsetBase: 4)
        }
        if i.xattrBlock != 0 {
            let block = try readBlock(i.xattrBlock)
            guard block.le32(at: 0) == EXT4.xattrMagic else { throw Error.corrupt("inode \(ino) has a bad xattr block") }
            all += EXT4.decodeXattrEntries(block, entriesStart: 32, offsetBase: 0)
        }
        var out: [String: [UInt8]] = [:]
        for x in all {
            guard let name = EXT4.xattrFullName(index: x.index, name: x.name) else { continue }
            out[name] = EXT4.isACL(index: x.index) ? (EXT4.aclFromDisk(x.value) ?? x.value) : x.value
        }
        return out
    }

    /// Visits every path below the root (breadth-first, names sorted), with its inode's metadata. The paths are
    /// for display: a name that is not UTF-8 shows replacement characters; ``walkPaths(_:)`` gives the bytes.
    public func walk(_ visit: (String, Stat) throws -> Void) throws {
        try walkPaths { path, stat in try visit(String(decoding: path.bytes, as: UTF8.self), stat) }
    }

    /// Visits every path below the root (breadth-first, names sorted by their bytes), as the bytes the names
    /// hold, with its inode's metadata: every path it gives resolves again with `resolve(_:followFinal:)`.
    public func walkPaths(_ visit: (BytePath, Stat) throws -> Void) throws {
        var queue: [(UInt32, BytePath)] = [(EXT4.rootInode, BytePath([]))]
        // A directory has one parent: one reached twice is a damaged (or hostile) image, and walking it again
        // would never end.
        var directories: Set<UInt32> = [EXT4.rootInode]
        var head = 0
        while head < queue.count {
            let (dir, prefix) = queue[head]
            head += 1
            for e in try list(inode: dir).sorted(by: { $0.nameBytes.lexicographicallyPrecedes($1.nameBytes) }) {
                let p = BytePath(prefix.bytes + [0x2F] + e.nameBytes)
                let st = try stat(inode: e.inode)
                try visit(p, st)
                if st.kind == .directory {
                    guard directories.insert(e.inode).inserted else {
                        throw Error.corrupt("directory inode \(e.inode) is reached twice (at \(p)): the tree has a cycle")
                    }
                    queue.append((e.inode, p))
                }
            }
        }
    }
}
