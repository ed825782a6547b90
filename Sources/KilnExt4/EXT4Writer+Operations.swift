import KilnCore

/// The tree operations: directories, symlinks, hard links, special files, attributes, removal and queries.
extension EXT4Writer {
    /// Creates a directory (and any missing parents). An existing directory is kept and, when `metadata` is
    /// given, takes that metadata (a later layer's directory metadata wins); anything else there is replaced.
    @discardableResult
    public func makeDirectory(
        _ path: BytePath, metadata: EXT4.Metadata? = nil, under root: EXT4.NodeID? = nil
    ) throws -> EXT4.NodeID {
        let place = try prepareCreate(path, under: root, mergeDirectory: true)
        if let existing = place.merged {
            if let metadata { nodes[Int(existing)].metadata = clamp(metadata) }
            return EXT4.NodeID(inode: existing)
        }
        let node = Node(kind: .directory, metadata: clamp(metadata ?? defaultDirectoryMetadata), children: [:])
        return EXT4.NodeID(inode: try addNode(node, in: place.directory, name: place.name))
    }

    /// Creates a symbolic link. Targets of up to 59 bytes live in the inode; longer ones (up to 4095) in a block.
    @discardableResult
    public func makeSymlink(
        _ path: BytePath, target: BytePath, metadata: EXT4.Metadata? = nil, under root: EXT4.NodeID? = nil
    ) throws -> EXT4.NodeID {
        let bytes = target.bytes
        guard !bytes.isEmpty, bytes.count <= EXT4.maximumSymlinkLength, !bytes.contains(0) else {
            throw Error.invalidSymlinkTarget(path: path, length: bytes.count)
        }
        let place = try prepareCreate(path, under: root, mergeDirectory: false)
        var node = Node(kind: .symlink, metadata: clamp(metadata ?? EXT4.Metadata(permissions: 0o777, time: options.defaultTime)))
        node.symlinkTarget = bytes
        node.size = UInt64(bytes.count)
        // The node first: a base may have a block waiting for it.
        let ino = try addNode(node, in: place.directory, name: place.name)
        if bytes.count >= 60 {
            let run = try allocateData(1)
            var block = bytes
            block.append(contentsOf: [UInt8](repeating: 0, count: EXT4.blockSize - bytes.count))
            try mapIO { try file.write(block, atBlock: run.lowerBound) }
            nodes[Int(ino)].extents = [EXT4.Extent(logical: 0, physical: run.lowerBound, length: 1)]
            nodes[Int(ino)].dataBlocks = 1
        }
        return EXT4.NodeID(inode: ino)
    }

    /// Creates a hard link at `path` to the node that `target` names (resolved under `targetRoot`, its final
    /// component not followed, so links to symlinks link the symlink itself).
    @discardableResult
    public func makeHardLink(
        _ path: BytePath, to target: BytePath, targetRoot: EXT4.NodeID? = nil, under root: EXT4.NodeID? = nil
    ) throws -> EXT4.NodeID {
        guard !isClosed else { throw Error.closed }
        let troot = try liveDirectory(targetRoot ?? root)
        guard let w = try walk(target, root: troot, followFinal: false, createParents: false), let node = w.existing else {
            throw Error.notFound(path: target)
        }
        return try makeHardLink(path, to: EXT4.NodeID(inode: node), under: root)
    }

    /// Creates a hard link at `path` to an existing non-directory node.
    @discardableResult
    public func makeHardLink(_ path: BytePath, to node: EXT4.NodeID, under root: EXT4.NodeID? = nil) throws -> EXT4.NodeID {
        let ino = try liveNode(node)
        guard nodes[Int(ino)].kind != .directory else { throw Error.isADirectory(path: path) }
        if let c = current, c.inode == ino { throw Error.fileStillOpen(path: c.path) }
        // Linking a node onto a name that already refers to it changes nothing.
        let r = try liveDirectory(root)
        if let w = try walk(path, root: r, followFinal: false, createParents: false), w.existing == ino {
            return node
        }
        guard nodes[Int(ino)].links < EXT4.linkMax else { throw Error.tooManyLinks(path: path) }
        let place = try prepareCreate(path, under: root, mergeDirectory: false)
        guard nodes[Int(ino)].live else { throw Error.unknownNode(node) }
        try addLink(ino, in: place.directory, name: place.name, path: path)
        return node
    }

    /// Creates a character or block device, a FIFO or a socket.
    @discardableResult
    public func makeSpecialFile(
        _ path: BytePath, kind: EXT4.FileKind, device: EXT4.DeviceNumber? = nil, metadata: EXT4.Metadata? = nil,
        under root: EXT4.NodeID? = nil
    ) throws -> EXT4.NodeID {
        switch kind {
        case .characterDevice, .blockDevice:
            let d = device ?? EXT4.DeviceNumber(major: 0, minor: 0)
            guard d.major < 4096, d.minor < (1 << 20) else {
                throw Error.invalidDevice(path: path, major: d.major, minor: d.minor)
            }
        case .fifo, .socket:
            break
        default:
            throw Error.invalidName(path: path)
        }
        let place = try prepareCreate(path, under: root, mergeDirectory: false)
        var node = Node(kind: kind, metadata: clamp(metadata ?? EXT4.Metadata(permissions: 0o644, time: options.defaultTime)))
        if kind == .characterDevice || kind == .blockDevice {
            node.device = device ?? EXT4.DeviceNumber(major: 0, minor: 0)
        }
        return EXT4.NodeID(inode: try addNode(node, in: place.directory, name: place.name))
    }

    /// Sets (or replaces) an extended attribute on the node `path` names (final symlink not followed).
    /// POSIX ACLs (`system.posix_acl_access`/`_default`) are given in the xattr interface format and stored in
    /// ext4's compact form.
    public func setXattr(_ name: String, value: [UInt8], at path: BytePath, under root: EXT4.NodeID? = nil) throws {
        let ino = try existingNode(path, under: root, followFinal: false)
        try setXattr(name, value: value, node: EXT4.NodeID(inode: ino), path: path)
    }

    /// Sets (or replaces) an extended attribute on a node.
    public func setXattr(_ name: String, value: [UInt8], node: EXT4.NodeID) throws {
        try setXattr(name, value: value, node: node, path: BytePath(node.description))
    }

    private func setXattr(_ name: String, value: [UInt8], node: EXT4.NodeID, path: BytePath) throws {
        guard !isClosed else { throw Error.closed }
        let ino = try liveNode(node)
        guard let key = EXT4.xattrKey(name) else { throw Error.unsupportedXattr(name: name) }
        guard key.name.count <= 255 else { throw Error.unsupportedXattr(name: name) }
        var stored = value
        if EXT4.isACL(index: key.index) {
            guard let disk = EXT4.aclToDisk(value) else { throw Error.invalidACL(path: path, name: name) }
            stored = disk
        }
        var xs = nodes[Int(ino)].xattrs.filter { !($0.index == key.index && $0.name == key.name) }
        xs.append(EXT4.Xattr(index: key.index, name: key.name, value: stored))
        xs.sort(by: EXT4.Xattr.storageOrder)
        guard EXT4.splitXattrs(xs) != nil else {
            let total = xs.reduce(0) { $0 + $1.entrySize + $1.valueSize }
            throw Error.xattrsTooLarge(path: path, bytes: total)
        }
        nodes[Int(ino)].xattrs = xs
    }

    /// Replaces the metadata of the node `path` names (final symlink not followed).
    public func setMetadata(_ metadata: EXT4.Metadata, at path: BytePath, under root: EXT4.NodeID? = nil) throws {
        guard !isClosed else { throw Error.closed }
        let ino = try existingNode(path, under: root, followFinal: false)
        nodes[Int(ino)].metadata = clamp(metadata)
    }

    /// Removes what `path` names (directories recursively; the final symlink itself, not its target). Returns
    /// false when nothing was there. Data blocks of freed files are zeroed in the image and stay free.
    @discardableResult
    public func remove(_ path: BytePath, under root: EXT4.NodeID? = nil) throws -> Bool {
        guard !isClosed else { throw Error.closed }
        if let c = current { throw Error.fileStillOpen(path: c.path) }
        let r = try liveDirectory(root)
        guard let w = try walk(path, root: r, followFinal: false, createParents: false) else { return false }
        guard let name = w.name else { throw Error.cannotReplaceRoot(path: path) }
        guard let existing = w.existing else { return false }
        if existing == EXT4.lostAndFoundInode { throw Error.protectedPath(path: path) }
        try unlink(name, in: w.directory)
        return true
    }

    /// The names in the directory `path` names (symlinks followed), sorted bytewise.
    public func children(of path: BytePath, under root: EXT4.NodeID? = nil) throws -> [BytePath] {
        let ino = try existingNode(path, under: root, followFinal: true)
        guard let children = nodes[Int(ino)].children else { throw Error.notADirectory(path: path) }
        return children.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { BytePath($0) }
    }

    /// What `path` names, or nil when nothing is there.
    public func lookup(_ path: BytePath, under root: EXT4.NodeID? = nil, followSymlinks: Bool = false) throws -> EXT4.Entry? {
        let r = try liveDirectory(root)
        guard let w = try walk(path, root: r, followFinal: followSymlinks, createParents: false), let ino = w.existing else {
            return nil
        }
        return entry(ino)
    }

    /// What a node is.
    public func entry(of node: EXT4.NodeID) throws -> EXT4.Entry {
        entry(try liveNode(node))
    }

    func entry(_ ino: UInt32) -> EXT4.Entry {
        let n = nodes[Int(ino)]
        var size = n.size
        if let c = current, c.inode == ino { size = c.size }
        return EXT4.Entry(
            node: EXT4.NodeID(inode: ino), kind: n.kind, size: n.kind == .directory ? 0 : size,
            metadata: n.metadata, linkCount: n.kind == .directory ? 2 + n.subdirectories : n.links,
            symlinkTarget: n.symlinkTarget.map { BytePath($0) }, device: n.device)
    }

    func existingNode(_ path: BytePath, under root: EXT4.NodeID?, followFinal: Bool) throws -> UInt32 {
        let r = try liveDirectory(root)
        guard let w = try walk(path, root: r, followFinal: followFinal, createParents: false), let ino = w.existing else {
            throw Error.notFound(path: path)
        }
        return ino
    }

    /// Keeps times inside what ext4 can store (1901..2446) and nanoseconds below one second.
    func clamp(_ m: EXT4.Metadata) -> EXT4.Metadata {
        func c(_ t: EXT4.Timestamp) -> EXT4.Timestamp {
            let lo = Int64(Int32.min)
            let hi = Int64(Int32.max) + 3 * (Int64(1) << 32)
            return EXT4.Timestamp(seconds: min(max(t.seconds, lo), hi), nanoseconds: min(t.nanoseconds, 999_999_999))
        }
        var out = m
        out.permissions &= 0o7777
        out.accessTime = c(m.accessTime)
        out.modificationTime = c(m.modificationTime)
        out.changeTime = c(m.changeTime)
        out.creationTime = c(m.creationTime)
        return out
    }
}
