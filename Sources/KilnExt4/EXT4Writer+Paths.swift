import KilnCore

/// Safe path resolution inside a subtree root, and the tree edits every operation builds on.
extension EXT4Writer {
    /// Symlinks followed while resolving one path before giving up (the limit filepath-securejoin uses).
    static let symlinkLimit = 255

    /// The outcome of walking a path.
    struct Walk {
        /// The directory holding the final component (or the directory the path resolved to).
        var directory: UInt32
        /// The final component; nil when the path names a directory itself ("", "/", "..", "a/..").
        var name: [UInt8]?
        /// What the final component refers to now, if anything.
        var existing: UInt32?
    }

    static func components(_ path: [UInt8]) -> [[UInt8]] {
        path.split(separator: 0x2F, omittingEmptySubsequences: true).map(Array.init).filter { $0 != [0x2E] }
    }

    func liveDirectory(_ id: EXT4.NodeID?) throws -> UInt32 {
        let ino = id?.inode ?? EXT4.rootInode
        guard Int(ino) < nodes.count, nodes[Int(ino)].live, nodes[Int(ino)].kind == .directory else {
            throw Error.unknownNode(id ?? .root)
        }
        return ino
    }

    func liveNode(_ id: EXT4.NodeID) throws -> UInt32 {
        guard Int(id.inode) < nodes.count, nodes[Int(id.inode)].live else { throw Error.unknownNode(id) }
        return id.inode
    }

    /// Resolves `path` under `root`. Intermediate symlinks are followed (targets interpreted inside `root`);
    /// the final one only when `followFinal`. Missing intermediate directories are created when
    /// `createParents`, otherwise the walk stops with `nil`.
    func walk(_ path: BytePath, root: UInt32, followFinal: Bool, createParents: Bool) throws -> Walk? {
        // Layers list a directory's entries together: the directory the last path's parent resolved to is
        // usually this one's too, and nothing that would resolve it differently (a removal) has happened since.
        let split = Self.parentAndName(path.bytes)
        if !followFinal, let (parent, name) = split, let cached = lastParent, cached.generation == treeGeneration,
            cached.root == root, cached.parent.elementsEqual(parent)
        {
            guard name.count <= EXT4.maximumNameLength else { throw Error.nameTooLong(path: path, length: name.count) }
            guard !name.contains(0) else { throw Error.invalidName(path: path) }
            let key = Array(name)
            return Walk(directory: cached.directory, name: key, existing: nodes[Int(cached.directory)].children?[key])
        }
        let result = try fullWalk(path, root: root, followFinal: followFinal, createParents: createParents)
        if !followFinal, let (parent, name) = split, let w = result, let found = w.name, found.elementsEqual(name) {
            lastParent = ParentCache(root: root, parent: Array(parent), directory: w.directory, generation: treeGeneration)
        }
        return result
    }

    /// The bytes before the final component and the final component, when that is a name (not `.` or `..`).
    static func parentAndName(_ bytes: [UInt8]) -> (parent: ArraySlice<UInt8>, name: ArraySlice<UInt8>)? {
        var end = bytes.count
        while end > 0 && bytes[end - 1] == BytePath.slash { end -= 1 }
        guard end > 0 else { return nil }
        var start = end
        while start > 0 && bytes[start - 1] != BytePath.slash { start -= 1 }
        let name = bytes[start..<end]
        if name.elementsEqual([0x2E]) || name.elementsEqual([0x2E, 0x2E]) { return nil }
        return (bytes[0..<start], name)
    }

    private func fullWalk(_ path: BytePath, root: UInt32, followFinal: Bool, createParents: Bool) throws -> Walk? {
        var stack: [UInt32] = [root]
        var queue = Array(Self.components(path.bytes).reversed())
        var followed = 0
        while let c = queue.popLast() {
            let isFinal = queue.isEmpty
            if c == [0x2E, 0x2E] {
                if stack.count > 1 { stack.removeLast() }
                if isFinal { return Walk(directory: stack[stack.count - 1], name: nil, existing: stack[stack.count - 1]) }
                continue
            }
            guard c.count <= EXT4.maximumNameLength else { throw Error.nameTooLong(path: path, length: c.count) }
            guard !c.contains(0) else { throw Error.invalidName(path: path) }
            let dir = stack[stack.count - 1]
            let child = nodes[Int(dir)].children?[c]
            if isFinal {
                guard followFinal, let child, nodes[Int(child)].kind == .symlink else {
                    return Walk(directory: dir, name: c, existing: child)
                }
            }
            guard let child else {
                guard createParents else { return nil }
                guard stack.count < options.maximumDepth + 1 else { throw Error.tooDeep(path: path, limit: options.maximumDepth) }
                let made = try addNode(
                    Node(kind: .directory, metadata: defaultDirectoryMetadata, children: [:]), in: dir, name: c)
                stack.append(made)
                continue
            }
            switch nodes[Int(child)].kind {
            case .directory:
                stack.append(child)
                guard stack.count <= options.maximumDepth + 1 else { throw Error.tooDeep(path: path, limit: options.maximumDepth) }
            case .symlink:
                followed += 1
                guard followed <= Self.symlinkLimit else { throw Error.symlinkLoop(path: path) }
                let target = nodes[Int(child)].symlinkTarget ?? []
                if target.first == 0x2F { stack = [root] }
                queue.append(contentsOf: Self.components(target).reversed())
                if isFinal && queue.isEmpty {
                    // The target named a directory itself ("/", ".." ...): the path is that directory.
                    return Walk(directory: stack[stack.count - 1], name: nil, existing: stack[stack.count - 1])
                }
            default:
                throw Error.notADirectory(path: path)
            }
        }
        return Walk(directory: stack[stack.count - 1], name: nil, existing: stack[stack.count - 1])
    }

    var defaultDirectoryMetadata: EXT4.Metadata {
        EXT4.Metadata(permissions: 0o755, time: options.defaultTime)
    }

    /// Adds a new node as `name` in directory `dir` and returns its inode number.
    func addNode(_ node: Node, in dir: UInt32, name: [UInt8]) throws -> UInt32 {
        guard nodes.count < Int(UInt32.max) - 1 else { throw Error.tooManyInodes(needed: UInt64(nodes.count) + 1) }
        var ino = UInt32(nodes.count)
        if base != nil {
            ino = base?.claim(node.kind, in: dir, name: name) ?? base?.newInode() ?? ino
            guard ino < UInt32.max - 1 else { throw Error.tooManyInodes(needed: UInt64(ino)) }
        }
        var n = node
        if n.kind == .directory {
            n.parent = dir
            nodes[Int(dir)].subdirectories += 1
        }
        if Int(ino) < nodes.count {
            nodes[Int(ino)] = n
        } else {
            // Numbers a base holds for later are skipped: placeholders, not in use, until a node takes them.
            while nodes.count < Int(ino) { nodes.append(Node(kind: .regular, metadata: nodes[0].metadata, live: false)) }
            nodes.append(n)
        }
        nodes[Int(dir)].children?[name] = ino
        return ino
    }

    /// Adds an entry for an existing non-directory node (a hard link).
    func addLink(_ ino: UInt32, in dir: UInt32, name: [UInt8], path: BytePath) throws {
        guard nodes[Int(ino)].links < EXT4.linkMax else { throw Error.tooManyLinks(path: path) }
        nodes[Int(ino)].links += 1
        nodes[Int(dir)].children?[name] = ino
    }

    /// Resolves the place where `path` is to be created: the parent directory and the final name, with any
    /// existing entry removed first, unless it is a directory and `mergeDirectory` (then it is returned).
    func prepareCreate(
        _ path: BytePath, under: EXT4.NodeID?, mergeDirectory: Bool
    ) throws -> (directory: UInt32, name: [UInt8], merged: UInt32?) {
        guard !isClosed else { throw Error.closed }
        if let c = current { throw Error.fileStillOpen(path: c.path) }
        let root = try liveDirectory(under)
        guard let w = try walk(path, root: root, followFinal: false, createParents: true) else {
            throw Error.notFound(path: path)
        }
        guard let name = w.name else {
            if mergeDirectory, let d = w.existing { return (w.directory, [], d) }
            throw Error.cannotReplaceRoot(path: path)
        }
        if let existing = w.existing {
            if mergeDirectory, nodes[Int(existing)].kind == .directory { return (w.directory, name, existing) }
            if existing == EXT4.lostAndFoundInode { throw Error.protectedPath(path: path) }
            try unlink(name, in: w.directory)
        }
        return (w.directory, name, nil)
    }

    /// Removes entry `name` from `dir`: directories with everything below them, other nodes by dropping one
    /// link and freeing them when no link is left.
    func unlink(_ name: [UInt8], in dir: UInt32) throws {
        guard let child = nodes[Int(dir)].children?.removeValue(forKey: name) else { return }
        treeGeneration &+= 1
        if nodes[Int(child)].kind != .directory {
            try dropLink(child)
            return
        }
        nodes[Int(dir)].subdirectories -= 1
        // Depth-first without recursion: deep trees must not exhaust the stack.
        var pending: [UInt32] = [child]
        while let d = pending.popLast() {
            for (_, c) in nodes[Int(d)].children ?? [:] {
                if nodes[Int(c)].kind == .directory {
                    pending.append(c)
                } else {
                    try dropLink(c)
                }
            }
            try free(d)
        }
    }

    private func dropLink(_ ino: UInt32) throws {
        nodes[Int(ino)].links -= 1
        if nodes[Int(ino)].links <= 0 { try free(ino) }
    }

    /// Frees a node and zeroes the blocks it had written, so that no stale data stays in the image.
    private func free(_ ino: UInt32) throws {
        // Its data may still be pending: written after the zeros, it would come back.
        try flushPending()
        var n = nodes[Int(ino)]
        freedInodes += 1
        switch n.kind {
        case .directory: freedBytes += UInt64(EXT4.blockSize)
        case .regular: freedBytes += (n.size + UInt64(EXT4.blockSize) - 1) / UInt64(EXT4.blockSize) * UInt64(EXT4.blockSize)
        case .symlink: freedBytes += n.size >= 60 ? UInt64(EXT4.blockSize) : 0
        default: break
        }
        for e in n.extents {
            let r = e.physical..<(e.physical + UInt64(e.length))
            try mapIO { try file.zero(blocks: r.lowerBound, count: UInt64(r.count)) }
        }
        for b in n.treeBlocks {
            try mapIO { try file.zero(blocks: b, count: 1) }
        }
        n.live = false
        base?.release(ino)
        n.extents = []
        n.treeBlocks = []
        n.children = nil
        n.xattrs = []
        n.symlinkTarget = nil
        n.treeRoot = nil
        nodes[Int(ino)] = n
    }

    /// The first path (sorted, breadth-first) of every live node, for error messages and the file map.
    func pathsByInode() -> [UInt32: BytePath] {
        var out: [UInt32: BytePath] = [EXT4.rootInode: "/"]
        var queue: [(UInt32, [UInt8])] = [(EXT4.rootInode, [])]
        var head = 0
        while head < queue.count {
            let (dir, prefix) = queue[head]
            head += 1
            let children = (nodes[Int(dir)].children ?? [:]).sorted { $0.key.lexicographicallyPrecedes($1.key) }
            for (name, c) in children where out[c] == nil {
                let p = prefix + [BytePath.slash] + name
                out[c] = BytePath(p)
                if nodes[Int(c)].kind == .directory { queue.append((c, p)) }
            }
        }
        return out
    }
}
