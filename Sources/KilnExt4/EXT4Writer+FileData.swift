import KilnCore

/// Regular files: created, streamed in chunks straight into their blocks, then finished.
extension EXT4Writer {
    /// Starts a regular file at `path` (replacing what is there). Stream its content with `appendFileData`
    /// and ``appendFileHole(_:)``, then call ``finishFile()``; no other change can be made while a file is open.
    @discardableResult
    public func beginFile(
        _ path: BytePath, metadata: EXT4.Metadata? = nil, under root: EXT4.NodeID? = nil
    ) throws -> EXT4.NodeID {
        let place = try prepareCreate(path, under: root, mergeDirectory: false)
        let node = Node(kind: .regular, metadata: clamp(metadata ?? EXT4.Metadata(permissions: 0o644, time: options.defaultTime)))
        let ino = try addNode(node, in: place.directory, name: place.name)
        current = OpenFile(inode: ino, path: path)
        return EXT4.NodeID(inode: ino)
    }

    /// Appends bytes to the open file.
    public func appendFileData(_ bytes: UnsafeRawBufferPointer) throws {
        guard var f = current else { throw Error.noOpenFile }
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        current = nil
        defer { current = f }
        let newSize = f.size + UInt64(bytes.count)
        guard newSize <= EXT4.maximumFileSize else { throw Error.fileTooLarge(path: f.path, size: newSize) }
        var i = 0
        let bs = EXT4.blockSize
        // Complete a partial block first.
        if f.partialCount > 0 {
            let n = min(bs - f.partialCount, bytes.count)
            partialBlock.withUnsafeMutableBytes { dst in
                dst.baseAddress?.advanced(by: f.partialCount).copyMemory(from: source, byteCount: n)
            }
            f.partialCount += n
            f.size += UInt64(n)
            i = n
            if f.partialCount == bs {
                try emitPartialBlock(logical: (f.size - 1) / UInt64(bs), inode: f.inode, count: f.partialCount)
                f.partialCount = 0
            }
        }
        // Whole blocks straight from the caller's buffer.
        while bytes.count - i >= bs {
            try emit(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + bs)]), logical: f.size / UInt64(bs), inode: f.inode)
            f.size += UInt64(bs)
            i += bs
        }
        // Keep the tail.
        if i < bytes.count {
            let n = bytes.count - i
            partialBlock.withUnsafeMutableBytes { dst in
                dst.baseAddress?.copyMemory(from: source.advanced(by: i), byteCount: n)
            }
            f.partialCount = n
            f.size += UInt64(n)
        }
    }

    /// Appends bytes to the open file.
    public func appendFileData(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try appendFileData($0) }
    }

    /// Appends `length` zero bytes that occupy no blocks (a hole), as sparse files need.
    public func appendFileHole(_ length: UInt64) throws {
        guard var f = current else { throw Error.noOpenFile }
        current = nil
        defer { current = f }
        let newSize = f.size + length
        guard newSize <= EXT4.maximumFileSize else { throw Error.fileTooLarge(path: f.path, size: newSize) }
        var left = length
        let bs = UInt64(EXT4.blockSize)
        if f.partialCount > 0 {
            let n = min(bs - UInt64(f.partialCount), left)
            f.partialCount += Int(n)
            left -= n
            if f.partialCount == EXT4.blockSize {
                try emitPartialBlock(logical: f.size / bs, inode: f.inode, count: f.partialCount)
                f.partialCount = 0
            }
        }
        f.partialCount += Int(left % bs)
        f.size = newSize
    }

    /// Completes the open file: writes its last block and its extent tree.
    public func finishFile() throws {
        guard let f = current else { throw Error.noOpenFile }
        current = nil
        if f.partialCount > 0 {
            try emitPartialBlock(logical: (f.size - 1) / UInt64(EXT4.blockSize), inode: f.inode, count: f.partialCount)
        }
        // The data stays pending: the next file's blocks follow on, so a layer of small files is written in 1 MiB
        // runs instead of a write per file. Nothing reads the image before close, which flushes it.
        let ino = f.inode
        nodes[Int(ino)].size = f.size
        try buildTreeIfNeeded(ino)
        base?.preferred = []
    }

    /// Writes a whole file in one call.
    @discardableResult
    public func writeFile(
        _ path: BytePath, contents: [UInt8], metadata: EXT4.Metadata? = nil, under root: EXT4.NodeID? = nil
    ) throws -> EXT4.NodeID {
        let id = try beginFile(path, metadata: metadata, under: root)
        try appendFileData(contents)
        try finishFile()
        return id
    }

    /// Places the partial block, whose first `count` bytes were written (the rest is zero), and clears it for
    /// the next block.
    private func emitPartialBlock(logical: UInt64, inode: UInt32, count: Int) throws {
        defer {
            partialBlock.withUnsafeMutableBytes { b in
                _ = UnsafeMutableRawBufferPointer(rebasing: b[0..<count]).initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
        try partialBlock.withUnsafeBytes { try emit($0, logical: logical, inode: inode) }
    }

    /// Places one block of file content at logical block `logicalBlock` of the open file.
    private func emit(_ block: UnsafeRawBufferPointer, logical logicalBlock: UInt64, inode ino: UInt32) throws {
        let logical = UInt32(truncatingIfNeeded: logicalBlock)
        if options.zeroBlocksAsHoles && EXT4.isAllZero(block) { return }
        let physical = try allocateData(1).lowerBound
        nodes[Int(ino)].appendBlock(logical: logical, physical: physical)
        nodes[Int(ino)].dataBlocks += 1
        if !pendingBytes.isEmpty, pendingStart + UInt64(pendingBytes.count / EXT4.blockSize) != physical {
            try flushPending()
        }
        if pendingBytes.isEmpty {
            pendingStart = physical
            if pendingBytes.capacity < Self.pendingLimit + Self.pendingAlignment, var reused = file.writtenRun() {
                reused.removeAll(keepingCapacity: true)
                pendingBytes = reused
            }
            pendingBytes.reserveCapacity(Self.pendingLimit + Self.pendingAlignment)
        }
        pendingBytes.append(contentsOf: block)
        if pendingBytes.count >= Self.pendingLimit {
            let end = file.offset + (physical + 1) * UInt64(EXT4.blockSize)
            if end % UInt64(Self.pendingAlignment) == 0 || pendingBytes.count >= Self.pendingLimit + Self.pendingAlignment {
                try flushPending()
            }
        }
    }

    /// Hands the pending run over to be written behind: the next files are parsed and placed while the kernel
    /// copies it. Whatever touches the image next waits for it.
    func flushPending() throws {
        guard !pendingBytes.isEmpty else { return }
        let run = pendingBytes
        pendingBytes = []
        try mapIO { try file.writeBehind(run, atByte: pendingStart * UInt64(EXT4.blockSize)) }
    }

    /// Allocates blocks from the data frontier; a fixed-size filesystem reports how much it would need.
    func allocateData(_ count: UInt64) throws -> Range<UInt64> {
        if base != nil, let kept = base?.takePreferred(count) { return kept }
        do {
            return try allocator.allocate(upTo: count)
        } catch let e as EXT4.BlockAllocator.Exhausted {
            throw Error.doesNotFit(
                neededBytes: e.needed * UInt64(EXT4.blockSize),
                availableBytes: (fixedBlocks ?? 0) * UInt64(EXT4.blockSize))
        }
    }

    /// Files with more than four extents get their index and leaf blocks now, right after their data.
    func buildTreeIfNeeded(_ ino: UInt32) throws {
        guard nodes[Int(ino)].extentCount > EXT4.extentsInInode else { return }
        let extents = nodes[Int(ino)].extents
        var allocated: [UInt64] = []
        let tree = try EXT4.buildExtentTree(
            extents, inode: ino, generation: 0, checksumSeed: checksumSeed,
            allocate: { n in
                var out: [UInt64] = []
                while out.count < n { out.append(contentsOf: try allocateData(UInt64(n - out.count))) }
                return out
            })
        for b in tree.blocks {
            try mapIO { try file.write(b.bytes, atBlock: b.block) }
            allocated.append(b.block)
        }
        nodes[Int(ino)].treeRoot = tree.root
        nodes[Int(ino)].treeBlocks = allocated
    }
}
